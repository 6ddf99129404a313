/**
 * Runs the chat example: `make chat`, or `node --import tsx scripts/chat/main.ts [port]`
 * (default 8888), then open http://localhost:8888/ in two browser windows.
 */
import { randomBytes } from "node:crypto";
import { createChatApp } from "./chat.ts";

const port = Number(process.argv[2] ?? process.env["PORT"] ?? 8888);
const { app } = createChatApp({ cookieSecret: process.env["COOKIE_SECRET"] ?? randomBytes(32).toString("hex") });
const server = await app.listen(port);
console.log(`chat: http://localhost:${server.address()?.port ?? port}/`);

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    server.closeAllConnections();
    process.exit(0);
  });
}
