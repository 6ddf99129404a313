/**
 * BlockingWatch on its own, without waiting for its timer: a block after an await is reported
 * the moment the last request in flight finishes, because the watchdog's tick may come long
 * after the loop is free (on Node 24 it came 150-300 ms late, after the response had been sent),
 * and a stretch already reported by a timed hook is not reported twice.
 */
import t from "tap";
import { BlockingWatch, type InFlight } from "../../../core/loop/blocking.ts";

function block(ms: number): void {
  const started = performance.now();
  while (performance.now() - started < ms) { /* hold the loop on purpose */ }
}

const entry = (path: string): InFlight => ({ method: "GET", path, handler: "H", hook: "get" });

t.test("a block while one request is in flight is reported when it leaves, before any tick", (t) => {
  const lines: string[] = [];
  const watch = new BlockingWatch(50, (message) => lines.push(message));
  const request = entry("/after-await");
  watch.enter(request);
  block(120);
  // Same synchronous turn: the watchdog's timer cannot have fired.
  watch.leave(request);
  t.equal(lines.length, 1, lines.join("\n"));
  const match = /^GET \/after-await blocked the event loop for (\d+) ms in H\.get \(after an await\)$/.exec(lines[0] ?? "");
  t.ok(match, lines[0] ?? "no line");
  // Overdue is measured from when the first tick was due (interval 25 ms after enter).
  t.ok(Number(match?.[1]) >= 120 - 25, `reported ${match?.[1]} ms for a 120 ms block`);
  t.end();
});

t.test("requests that leave without a block are not reported", (t) => {
  const lines: string[] = [];
  const watch = new BlockingWatch(50, (message) => lines.push(message));
  for (const path of ["/a", "/b", "/c"]) {
    const request = entry(path);
    watch.enter(request);
    watch.leave(request);
  }
  t.same(lines, []);
  t.end();
});

t.test("a block a timed hook already reported is not reported again on leave", (t) => {
  const lines: string[] = [];
  const watch = new BlockingWatch(50, (message) => lines.push(message));
  const request = entry("/prepare");
  watch.enter(request);
  block(120);
  watch.noteReported();
  watch.leave(request);
  t.same(lines, []);
  t.end();
});

t.test("with two requests in flight the block is reported when the last leaves, naming both", (t) => {
  const lines: string[] = [];
  const watch = new BlockingWatch(50, (message) => lines.push(message));
  const first = entry("/one");
  const second = entry("/two");
  watch.enter(first);
  watch.enter(second);
  block(120);
  watch.leave(first);
  t.same(lines, [], "one request still in flight: the tick will report, with it in flight");
  watch.leave(second);
  t.equal(lines.length, 1, lines.join("\n"));
  t.match(lines[0] ?? "", /while serving 2 requests: GET \/one \(H\.get\), GET \/two \(H\.get\)/);
  t.end();
});

t.test("a request left twice, or entered twice, is counted once: the report waits for the last one really in flight", (t) => {
  const lines: string[] = [];
  const watch = new BlockingWatch(50, (message) => lines.push(message));
  const [a, b, c, d] = ["/a", "/b", "/c", "/d"].map(entry) as [InFlight, InFlight, InFlight, InFlight];
  watch.enter(a);
  watch.enter(b);
  watch.enter(c);
  watch.leave(b);
  watch.enter(d); // takes the place b left
  watch.enter(d);
  watch.leave(b);
  watch.leave({ method: "GET", path: "/never", handler: "H", hook: "get" });
  block(120);
  watch.leave(a);
  watch.leave(c);
  t.same(lines, [], "d is still in flight");
  watch.leave(d);
  t.equal(lines.length, 1, lines.join("\n"));
  t.match(lines[0] ?? "", /while serving 4 requests: GET \/b \(H\.get\), GET \/a \(H\.get\), GET \/c \(H\.get\), GET \/d \(H\.get\)/);
  t.end();
});
