/**
 * `npm run demo`: the point of the tool in a few seconds. A few hundred prompts go to the
 * in-process mock provider, whose answers take 2 s each, at a fixed rate; at the same time the
 * same prompts go through a semaphore of the same size (p-limit, the usual way). The first
 * finishes in about N/R + 2 s, the semaphore in N/size × 2 s. It writes the answers, the
 * per-second sidecar and the HTML report of the rate-limited run, and prints the report's path.
 *
 *   bun scripts/demo.ts [--prompts 300] [--rate 60] [--latency 2000] [--out out/demo]
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import pLimit from "p-limit";
import { parseLine } from "../src/formats.ts";
import { createMockProvider } from "../src/providers/mock.ts";
import { type RealtimeRun, runRealtime } from "../src/run.ts";
import { recordRun, writeReport } from "../src/cli/report.ts";

const { values } = parseArgs({
  options: {
    prompts: { type: "string", default: "300" },
    rate: { type: "string", default: "60" },
    latency: { type: "string", default: "2000" },
    out: { type: "string", default: "out/demo" },
  },
});
const n = Number(values.prompts), rate = Number(values.rate), latencyMs = Number(values.latency);
const root = path.resolve(import.meta.dirname!, "..");
const outDir = path.resolve(values.out!);
fs.mkdirSync(outDir, { recursive: true });

// The shipped examples (all four input formats), repeated with fresh ids up to n prompts.
const examples = fs.readFileSync(path.join(root, "examples/prompts.jsonl"), "utf8").trim()
  .split("\n").map((l) => JSON.parse(l));
const lines = Array.from({ length: n }, (_, i) => {
  const e = structuredClone(examples[i % examples.length]);
  const id = `demo-${String(i + 1).padStart(4, "0")}`;
  if ("custom_id" in e) e.custom_id = id;
  else if ("key" in e) e.key = id;
  else e.id = id;
  return JSON.stringify(e);
});
const input = path.join(outDir, "prompts.jsonl");
fs.writeFileSync(input, lines.join("\n") + "\n");

const output = path.join(outDir, "output.jsonl");
const errors = path.join(outDir, "errors.jsonl");
console.log(
  `demo: ${n} prompts on the mock provider, ${latencyMs / 1000} s per answer, ${rate} req/s`,
);

/** The tool's way: one request every 1/R s, whatever the answers' time. */
async function rateLimited(): Promise<number> {
  const started = performance.now();
  const out = fs.openSync(output, "w");
  const errs = fs.openSync(errors, "w");
  const live: { run?: RealtimeRun } = {};
  const record = recordRun({
    output,
    append: false,
    command: ["bun", "scripts/demo.ts", ...process.argv.slice(2)],
    targetRate: rate,
    provider: "mock",
    model: "mock-1",
    input,
    inFlight: () => live.run?.stats.inFlight ?? 0,
  });
  const run = live.run = runRealtime(ReadableStream.from(lines), {
    provider: createMockProvider({ latencyMs }),
    rate,
    // The CLI sends one request first and waits for its answer (a wrong key or model then costs
    // one request); the demo goes straight to full rate to show the shape alone.
    probe: false,
    observer: record.observer,
  });
  for await (const r of run.results) {
    fs.writeSync(r.type === "ok" ? out : errs, JSON.stringify(r.record) + "\n");
  }
  const stats = await run.done;
  record.finish(stats);
  fs.closeSync(out);
  fs.closeSync(errs);
  if (stats.ok !== n) throw new Error(`demo: only ${stats.ok} of ${n} answered`);
  return (performance.now() - started) / 1000;
}

/** The usual way: at most `size` requests open, the next one leaves when an answer comes back. */
async function semaphore(size: number): Promise<number> {
  const started = performance.now();
  const provider = createMockProvider({ latencyMs });
  const limit = pLimit(size);
  await Promise.all(lines.map((line, i) =>
    limit(() => {
      const parsed = parseLine(line, i + 1);
      if (!parsed.ok) throw new Error(parsed.message);
      return provider.send(parsed.item);
    })
  ));
  return (performance.now() - started) / 1000;
}

const size = Math.ceil(rate);
const [ours, theirs] = await Promise.all([rateLimited(), semaphore(size)]);
const ideal = n / rate + latencyMs / 1000;
const semIdeal = Math.ceil(n / size) * latencyMs / 1000;
const pad = (s: string) => s.padEnd(34);
console.log(
  `  ${pad(`rate-limited fire-and-forget:`)}${ours.toFixed(1)} s   (N/R + latency = ${
    ideal.toFixed(1)
  } s)`,
);
console.log(
  `  ${pad(`semaphore of ${size} (p-limit):`)}${theirs.toFixed(1)} s   (N/${size} × latency = ${
    semIdeal.toFixed(1)
  } s)`,
);
console.log(`answers: ${path.relative(process.cwd(), output)}`);
console.log(`report: ${path.relative(process.cwd(), writeReport(output))}`);
