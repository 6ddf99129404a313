// The bench suite's writers on fake rows: the terminal table, the Markdown table the README
// includes and the SVG chart must be complete, escaped and faithful to the figures, whatever the
// rows hold (odd names, missed targets, a ratio that is not finite).
import t from "tap";
import type { Row } from "../../scripts/bench/harness.ts";
import { cpuRatio, markdownTable, meetsTarget, textTable, type Results } from "../../scripts/bench/report.ts";
import { advantage, barChart, escapeXml } from "../../scripts/bench/chart.ts";

const run: Results["run"] = {
  date: "2026-11-26T17:00:00.000Z", cpu: "Test CPU <9000> & co", cores: 2, node: "v20.20.2", pinned: true,
  seconds: 5, rounds: 3, connections: 64, loadGenerator: "autocannon 8.0.0", loadAverage: [0.42, 1.5],
};

const rows: Row[] = [
  { name: "hello world", unit: "req/s", typhoon: 61000, peer: 64000, peerName: "node:http", ratio: 61000 / 64000,
    higherIsBetter: true, target: 0.9, typhoonCpuUs: 16, peerCpuUs: 15 },
  { name: "hello world", unit: "req/s", typhoon: 61000, peer: 52000, peerName: "Fastify", ratio: 61000 / 52000,
    higherIsBetter: true, target: 1 },
  { name: "routes | <script>", unit: "req/s", typhoon: 30000, peer: 60000, peerName: "a & b", ratio: 0.5,
    higherIsBetter: true, target: 0.9, note: "server at 40% of its core" },
  { name: "p99 latency", unit: "ms", typhoon: 2, peer: 4, peerName: "Express", ratio: 0.5, higherIsBetter: false, target: 0.8 },
  { name: "broken", unit: "req/s", typhoon: 0, peer: 0, peerName: "nothing", ratio: Number.NaN, higherIsBetter: true },
];

/** Checks that every opened SVG tag is closed in order; returns the names of the elements opened. */
function balancedTags(svg: string): string[] {
  const stack: string[] = [];
  const seen: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
    const [, closing, name, selfClosing] = m;
    if (closing !== "/") seen.push(name!);
    if (selfClosing === "/") continue;
    if (closing === "/") {
      if (stack.pop() !== name) throw new Error(`</${name}> closes the wrong element`);
    } else stack.push(name!);
  }
  if (stack.length > 0) throw new Error(`unclosed: ${stack.join(", ")}`);
  return seen;
}

t.test("meetsTarget compares in the row's direction and is undefined without a target", async (t) => {
  t.equal(meetsTarget(rows[0]!), true);
  t.equal(meetsTarget(rows[1]!), true);
  t.equal(meetsTarget(rows[2]!), false);
  t.equal(meetsTarget(rows[3]!), true, "lower is better: 0.5 ≤ 0.8");
  t.equal(meetsTarget({ ...rows[3]!, ratio: 0.9 }), false);
  t.equal(meetsTarget(rows[4]!), undefined);
});

t.test("the CPU ratio is the peer's CPU per request over typhoon's", async (t) => {
  t.equal(cpuRatio(rows[0]!), "0.94×");
  t.equal(cpuRatio(rows[1]!), "", "no CPU figures, no ratio");
});

t.test("the Markdown table has one well-formed line per row, with verdicts and escaped cells", async (t) => {
  const md = markdownTable({ run, rows });
  const lines = md.split("\n").filter((l) => l.startsWith("| "));
  t.equal(lines.length, rows.length + 2, "header, separator and one line per row");
  const columns = (line: string): number => line.replace(/\\\|/g, "").split("|").length;
  for (const line of lines) t.equal(columns(line), columns(lines[0]!), `same column count: ${line}`);
  t.match(lines[2]!, /\| hello world \| 61,000 req\/s \| node:http \| 64,000 req\/s \| 0\.95× \| met \(target ≥ 0\.90×\) \| 16 \/ 15 \| 0\.94× \|/);
  t.match(md, /routes \\\| <script>/, "a pipe in a name is escaped");
  t.match(md, /MISSED \(target ≥ 0\.90×\)/);
  t.match(md, /met \(target ≤ 0\.80×\)/);
  t.match(md, /Test CPU <9000> & co · 2 cores · Node v20\.20\.2/);
  t.match(md, /load average 0\.4 → 1\.5/, "how busy the machine was is part of the record");
  t.match(md, /- routes \\\| <script> vs a & b: server at 40% of its core/);
  t.match(lines[6]!, /\| broken \| 0 req\/s \| nothing \| 0 req\/s \| n\/a \|/, "a ratio that is not finite reads n/a");
});

t.test("the terminal table aligns every row and lists the notes", async (t) => {
  const text = textTable({ run, rows });
  const lines = text.split("\n");
  t.match(lines[0]!, /^benchmark\s+typhoon\s+peer\s+peer figure\s+ratio\s+target/);
  t.equal(lines.slice(2, 2 + rows.length).filter((l) => l.includes("req/s") || l.includes(" ms")).length, rows.length);
  t.match(text, /notes:\n {2}routes \| <script> vs a & b: server at 40% of its core/);
});

t.test("the SVG chart is a balanced document with one bar per row, escaped text, date and machine", async (t) => {
  const svg = barChart({ run, rows });
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  t.ok(svg.trimEnd().endsWith("</svg>"));
  const tags = balancedTags(svg);
  t.equal(tags.filter((n) => n === "rect").length, rows.length + 1, "a background and one bar per row");
  t.notMatch(svg, /<script/, "a name cannot inject markup");
  t.match(svg, /routes \| &lt;script&gt; vs a &amp; b/);
  t.match(svg, /2026-11-26 17:00 UTC · Test CPU &lt;9000&gt; &amp; co · 2 cores · Node v20\.20\.2/);
  t.notMatch(svg, /NaN|Infinity/, "a ratio that is not finite draws an empty bar");
  t.match(svg, /p99 latency vs Express \(lower is better\)/);
});

t.test("bars start at parity on a log axis: a 0.5× bar is as long as a 2× bar, on the other side", async (t) => {
  const svg = barChart({ run, rows });
  const bars = [...svg.matchAll(/<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)" height="\d+" fill="(#[0-9a-f]+)"><title>([^<]*)</g)];
  t.equal(bars.length, rows.length);
  const left = (i: number): number => Number(bars[i]![1]);
  const width = (i: number): number => Number(bars[i]![2]);
  const parity = left(3);
  t.ok(Math.abs(left(2) + width(2) - parity) < 0.2, "behind the peer (0.5×): the bar ends at parity");
  t.ok(Math.abs(width(2) - width(3)) < 0.2, "0.5× behind and 0.5× of a lower-is-better figure (2× ahead) are as long");
  t.ok(left(1) > parity - 0.2 && width(1) > 0, "ahead (1.17×): the bar starts at parity and goes right");
  t.ok(width(0) < width(1), "0.95× is a shorter bar than 1.17×");
  t.equal(width(4), 0, "a ratio that is not finite draws no bar");
  t.equal(bars[0]![3], "#2e7d32", "met: green");
  t.equal(bars[2]![3], "#c62828", "missed: red");
  t.equal(bars[4]![3], "#1565c0", "no target: blue");
  t.match(bars[0]![4]!, /61,000 vs 64,000 req\/s/);
});

t.test("advantage inverts lower-is-better ratios and refuses what is not finite", async (t) => {
  t.equal(advantage(rows[1]!), rows[1]!.ratio);
  t.equal(advantage(rows[3]!), 2);
  t.equal(advantage(rows[4]!), null);
  t.equal(advantage({ ...rows[0]!, ratio: 0 }), null);
});

t.test("escapeXml escapes the five XML specials", async (t) => {
  t.equal(escapeXml(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;");
});
