/**
 * Batch-mode benchmark: a 20,000-item job through the mock batch API with 1% item errors and
 * one expired batch (and a stuck one rescued by the deadline), run by the real CLI in a
 * subprocess. Checks that every input line ends in exactly one of output.jsonl / errors.jsonl
 * and that nothing the provider had already run was submitted again.
 *
 * Usage:
 *
 *   bun scripts/bench_batch.ts [--items 20000] [--out bench-results/batch.md]
 *   deno run -A scripts/bench_batch.ts …
 *
 * `--out -` prints only. All traffic goes to 127.0.0.1; state transitions take milliseconds.
 * @module
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { type MockBatchOptions, startMockBatch } from "../tests/mocks/mock_batch.ts";
import {
  currentRuntime,
  fmt,
  machineInfo,
  markdownTable,
  ROOT,
  runtimeVersion,
  scriptCommand,
  stamp,
  writeResult,
} from "./_bench_util.ts";

interface Scenario {
  name: string;
  provider: "openai" | "gemini";
  mock: MockBatchOptions;
  /** Items per batch (MFT_BATCH_MAX_ITEMS); undefined keeps the provider's limit. */
  maxItems?: number;
  deadline?: string;
  /** Realtime rate of the deadline rescue, req/s. */
  rate?: number;
}

interface Row {
  scenario: Scenario;
  code: number;
  wallMs: number;
  batches: number;
  expired: number;
  ok: number;
  errors: number;
  missing: number;
  duplicates: number;
  batchItems: number;
  resubmitted: number;
  answeredTwice: number;
  realtime: number;
}

const FAST: MockBatchOptions = {
  validatingMs: 50,
  runningMs: 400,
  finalizingMs: 20,
  cancellingMs: 20,
  itemErrorRate: 0.01,
  expireAnswered: 0.6,
};

const SCENARIOS: Scenario[] = [
  {
    name: "OpenAI, provider limits (1 batch of 20,000), it expires at 60%",
    provider: "openai",
    mock: { ...FAST, expire: [1] },
  },
  {
    name: "OpenAI, 5,000 per batch, batch 2 expires at 60%",
    provider: "openai",
    mock: { ...FAST, expire: [2] },
    maxItems: 5000,
  },
  {
    name: "OpenAI, batch 2 expires, batch 4 stuck, --deadline 3s (rescue at 1,000 req/s)",
    provider: "openai",
    mock: { ...FAST, expire: [2], stuck: [4] },
    maxItems: 5000,
    deadline: "3s",
    rate: 1000,
  },
  {
    name: "Gemini (JOB_STATE_*), 5,000 per batch, batch 3 expires at 60%",
    provider: "gemini",
    mock: { ...FAST, expire: [3], geminiStates: "JOB" },
    maxItems: 5000,
  },
];

function run(cmd: string[], env: Record<string, string>): Promise<{ code: number; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd[0], cmd.slice(1), { env, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr!.on("data", (d: Buffer) => (err += d.toString("utf8")));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code: code ?? 1, err }));
  });
}

function readIds(file: string): string[] {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, "utf8").split("\n").filter((l) => l.trim()).map((l) => {
    const r = JSON.parse(l);
    return String(r.custom_id ?? r.key ?? r.id);
  });
}

async function bench(scenario: Scenario, items: number, dir: string): Promise<Row> {
  const mock = await startMockBatch(scenario.mock);
  try {
    const input = path.join(dir, "input.jsonl");
    const lines: string[] = [];
    for (let i = 0; i < items; i++) {
      lines.push(
        scenario.provider === "openai"
          ? JSON.stringify({
            custom_id: `item-${i}`,
            method: "POST",
            url: "/v1/chat/completions",
            body: {
              model: "gpt-5-mini",
              messages: [{ role: "user", content: `Benchmark item ${i}: one short sentence.` }],
            },
          })
          : JSON.stringify({
            key: `item-${i}`,
            request: { contents: [{ role: "user", parts: [{ text: `Benchmark item ${i}.` }] }] },
          }),
      );
    }
    fs.writeFileSync(input, lines.join("\n") + "\n");
    const out = path.join(dir, "output.jsonl");
    const errors = path.join(dir, "errors.jsonl");
    for (const f of [out, errors, `${out}.batch.json`]) fs.rmSync(f, { force: true });
    const args = [
      "run",
      input,
      "--provider",
      scenario.provider,
      "--base-url",
      scenario.provider === "openai" ? `${mock.url}/v1` : mock.url,
      "--mode",
      "batch",
      "--output",
      out,
      "--errors",
      errors,
      ...(scenario.deadline ? ["--deadline", scenario.deadline] : []),
      ...(scenario.rate ? ["--rate-limit", String(scenario.rate)] : []),
      "--quiet",
    ];
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
    Object.assign(env, {
      OPENAI_API_KEY: `bench-key-${crypto.randomUUID()}`,
      GEMINI_API_KEY: "bench-not-a-real-key",
      MFT_BATCH_POLL_INTERVAL: "20ms",
    });
    if (scenario.maxItems) env.MFT_BATCH_MAX_ITEMS = String(scenario.maxItems);
    else delete env.MFT_BATCH_MAX_ITEMS;
    const started = performance.now();
    const result = await run(scriptCommand(currentRuntime(), path.join(ROOT, "cli.ts"), args), env);
    const wallMs = performance.now() - started;
    if (result.code !== 0 && result.code !== 1) {
      throw new Error(`${scenario.name}: exit ${result.code}\n${result.err}`);
    }
    const okIds = readIds(out);
    const errIds = readIds(errors);
    const seen = new Map<string, number>();
    for (const id of [...okIds, ...errIds]) seen.set(id, (seen.get(id) ?? 0) + 1);
    let missing = 0;
    for (let i = 0; i < items; i++) if (!seen.has(`item-${i}`)) missing++;
    const stats = mock.stats();
    return {
      scenario,
      code: result.code,
      wallMs,
      batches: stats.batches,
      expired: mock.batches().filter((b) => b.state === "expired").length,
      ok: okIds.length,
      errors: errIds.length,
      missing,
      duplicates: [...seen.values()].filter((n) => n > 1).length,
      batchItems: stats.batchItems,
      resubmitted: stats.resubmitted.length,
      answeredTwice: stats.answeredTwice.length,
      realtime: stats.realtimeRequests,
    };
  } finally {
    await mock.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { items: { type: "string" }, out: { type: "string" } },
    strict: true,
  });
  const items = Number(values.items ?? 20_000);
  const outFile = values.out ?? "bench-results/batch.md";
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mft-bench-batch-"));
  const rows: Row[] = [];
  try {
    for (const scenario of SCENARIOS) {
      const row = await bench(scenario, items, dir);
      rows.push(row);
      console.log(
        `${scenario.name}: exit ${row.code} · ${
          fmt(row.wallMs / 1000, 2)
        } s · ${row.batches} batches (${row.expired} expired) · ok ${row.ok} + errors ${row.errors} = ${
          row.ok + row.errors
        }/${items} · missing ${row.missing} · duplicates ${row.duplicates} · re-sent while answered ${
          row.answeredTwice + row.resubmitted
        } · realtime ${row.realtime}`,
      );
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const table = markdownTable(
    [
      "scenario",
      "exit",
      "wall",
      "batches (expired)",
      "items sent in batches",
      "realtime",
      "output",
      "errors",
      "missing",
      "in both / twice",
      "re-sent after an answer",
    ],
    rows.map((r) => [
      r.scenario.name,
      String(r.code),
      `${fmt(r.wallMs / 1000, 2)} s`,
      `${r.batches} (${r.expired})`,
      String(r.batchItems),
      String(r.realtime),
      String(r.ok),
      String(r.errors),
      String(r.missing),
      String(r.duplicates),
      String(r.resubmitted + r.answeredTwice),
    ]),
  );
  const ok = rows.every((r) =>
    r.missing === 0 && r.duplicates === 0 && r.resubmitted === 0 && r.answeredTwice === 0 &&
    r.ok + r.errors === items
  );
  const text = `# Batch mode: ${fmt(items, 0)} items through the mock batch API

${stamp()} · ${runtimeVersion()} · ${machineInfo()}

\`bun scripts/bench_batch.ts --items ${items}\`: the CLI (\`run --mode batch\`) in a subprocess
against \`tests/mocks/mock_batch.ts\` on 127.0.0.1. The mock fails 1% of items (400, drawn per key),
runs each batch in ~0.5 s (validating 50 ms, in progress 400 ms, finalizing 20 ms) and expires
the batch named in the scenario after answering 60% of it; a stuck batch never leaves
validating. The tool polls every 20 ms (\`MFT_BATCH_POLL_INTERVAL\`). Items the deadline
sends realtime go to the realtime mock, which fails none, hence fewer errors in that row. Exit 1
means "finished, some lines in errors.jsonl" (the 1% item errors).

${table}

- *items sent in batches* counts every submission; above ${fmt(items, 0)} are the items an
  expired (or cancelled) batch never ran, sent again in a new batch.
- *re-sent after an answer*: submissions of a key that a batch had already answered or still
  held open (the mock counts them): must be 0.
- *missing* / *in both / twice*: input ids in neither file / in both files or twice: must be 0.

Result: ${ok ? "every item in exactly one file, nothing submitted twice." : "FAILED"}
`;
  if (outFile !== "-") console.log(`wrote ${writeResult(outFile, text)}`);
  else console.log(text);
  if (!ok) process.exit(1);
}

if (import.meta.main) await main();
