// The chat page's client: opens the WebSocket, posts the form's text over it, and appends
// every message the server broadcasts (already escaped HTML) to the inbox.
"use strict";
(function () {
  const inbox = document.getElementById("inbox");
  const form = document.getElementById("messageform");
  const input = document.getElementById("message");
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  let socket;

  function connect() {
    socket = new WebSocket(scheme + location.host + "/chatsocket");
    socket.onmessage = function (event) {
      const message = JSON.parse(event.data);
      if (document.getElementById("m" + message.id)) return;
      const node = document.createElement("div");
      node.innerHTML = message.html;
      inbox.appendChild(node.firstChild);
      inbox.lastChild.scrollIntoView();
    };
    // Reconnect after a server restart, without hammering it.
    socket.onclose = function () { setTimeout(connect, 2000); };
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const body = input.value.trim();
    if (body === "" || socket.readyState !== WebSocket.OPEN) return;
    socket.send(JSON.stringify({ body: body }));
    input.value = "";
    input.focus();
  });
  connect();
  input.focus();
})();
