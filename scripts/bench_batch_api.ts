/**
 * Batch API benchmark (issue 12, "Must show"): a 100,000-line batch through `serve`'s OpenAI
 * Batch API at 1,000 req/s against the mock provider, driven by the official openai SDK. How
 * long from `batches.create` to `completed` against the ideal N/R, and the server's peak RSS
 * (it streams the upload to disk and the input file while it runs: memory must not grow with N).
 *
 * Every part is its own process: the mock provider (`tests/mocks/mock_provider.ts`, latency
 * `--latency` ms), the server (`cli.ts serve --provider openai --base-url MOCK/v1 --rate-limit R
 * --data-dir TMP`, started with `BUN_CONFIG_MAX_HTTP_REQUESTS` set so the pid we watch is the
 * server), and this script as the SDK client. For comparison (the baseline), the same lines are
 * then POSTed to `/v1/runs` of a fresh server: the realtime path the batch goes through, without
 * the Batch API's files, validation and progress files.
 *
 * Measured: upload time; create → completed (also create → in_progress, the validation pass);
 * the ratio to N/R; the mock's achieved rate and most arrivals in a 1 s window; the server's
 * peak RSS (VmHWM from /proc) and CPU time; every custom_id checked once in the output.
 *
 * Usage (run it under the machine's benchmark lock):
 *
 *   flock /tmp/mft-bench.lock bun scripts/bench_batch_api.ts [--items 100000] [--rate 1000]
 *     [--latency 200] [--skip-runs] [--out bench-results/batch-api.md]
 *
 * Linux only (/proc). All traffic goes to 127.0.0.1.
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import OpenAI from "openai";
import {
  busyCores,
  currentRuntime,
  ensureBunMaxHttpRequests,
  fmt,
  gitRevision,
  machineCpu,
  machineInfo,
  markdownTable,
  rerunCommand,
  ROOT,
  runtimeVersion,
  sleep,
  stamp,
  startMockServer,
  writeResult,
} from "./_bench_util.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    items: { type: "string", default: "100000" },
    rate: { type: "string", default: "1000" },
    latency: { type: "string", default: "200" },
    "skip-runs": { type: "boolean", default: false },
    out: { type: "string", default: "bench-results/batch-api.md" },
  },
});
const N = Number(values.items);
const R = Number(values.rate);
const LATENCY = Number(values.latency);
const KEY = "bench-key";
const TOKEN = "bench-token";

await ensureBunMaxHttpRequests();

/** Peak and current resident memory of `pid`, in MiB, and its CPU seconds (utime + stime). */
function procInfo(pid: number): { hwm: number; rss: number; cpu: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(status)?.[1]);
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { hwm: kib("VmHWM") / 1024, rss: kib("VmRSS") / 1024, cpu: ticks / 100 };
}

interface Server {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

async function startServer(mockUrl: string, dataDir: string): Promise<Server> {
  const child = spawn(process.execPath, [
    path.join(ROOT, "cli.ts"),
    "serve",
    "--port",
    "0",
    "--provider",
    "openai",
    "--base-url",
    `${mockUrl}/v1`,
    "--rate-limit",
    String(R),
    "--data-dir",
    dataDir,
  ], {
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      OPENAI_API_KEY: KEY,
      MFT_SERVER_TOKEN: TOKEN,
      BUN_CONFIG_MAX_HTTP_REQUESTS: "65535",
    },
  });
  let err = "";
  child.stderr!.on("data", (c: Buffer) => (err += c.toString("utf8")));
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (c: Buffer) => {
      out += c.toString("utf8");
      const m = /listening on (\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.on("exit", () => reject(new Error(`serve exited: ${err}`)));
  });
  return {
    url,
    child,
    async stop() {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

async function mockStats(
  url: string,
): Promise<{ count: number; maxPerWindow: number; rate: number }> {
  return await (await fetch(`${url}/__mock/stats`)).json();
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mft-bench-batch-api-"));
const input = path.join(tmp, "input.jsonl");
{
  const fd = fs.openSync(input, "w");
  let chunk = "";
  for (let i = 0; i < N; i++) {
    chunk += JSON.stringify({
      custom_id: `req-${i}`,
      method: "POST",
      url: "/v1/chat/completions",
      body: {
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: `Question number ${i}: what is ${i} + ${i}?` }],
      },
    }) + "\n";
    if (chunk.length > 1 << 20) {
      fs.writeSync(fd, chunk);
      chunk = "";
    }
  }
  fs.writeSync(fd, chunk);
  fs.closeSync(fd);
}
const inputBytes = fs.statSync(input).size;
const ideal = N / R;
const mock = await startMockServer(currentRuntime(), [
  "--port",
  "0",
  "--latency",
  String(LATENCY),
  "--no-record",
  "--require-key",
  KEY,
]);

const rows: string[][] = [];
const notes: string[] = [];
try {
  // ---------------------------------------------------------------- the Batch API
  await fetch(`${mock.url}/__mock/reset`, { method: "POST" });
  const server = await startServer(mock.url, path.join(tmp, "data"));
  const pid = server.child.pid!;
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: TOKEN, maxRetries: 0 });
  try {
    const idleRss = procInfo(pid).rss;
    const cpu0 = procInfo(pid).cpu;
    const machine0 = machineCpu();
    const u0 = performance.now();
    const file = await client.files.create({
      file: new File([await Bun.file(input).arrayBuffer()], "input.jsonl"),
      purpose: "batch",
    });
    const uploadS = (performance.now() - u0) / 1000;
    const t0 = performance.now();
    let batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    let inProgressS = NaN;
    let peakSeen = 0;
    while (!["completed", "failed", "cancelled", "expired"].includes(batch.status)) {
      await sleep(250);
      batch = await client.batches.retrieve(batch.id);
      if (batch.status !== "validating" && Number.isNaN(inProgressS)) {
        inProgressS = (performance.now() - t0) / 1000;
      }
      peakSeen = Math.max(peakSeen, procInfo(pid).rss);
    }
    const doneS = (performance.now() - t0) / 1000;
    const info = procInfo(pid);
    const machine1 = machineCpu();
    const stats = await mockStats(mock.url);
    // Every custom_id once in the output, read as a stream.
    const seen = new Set<string>();
    let dup = 0;
    const res = await client.files.content(batch.output_file_id!);
    let rest = "";
    for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const line of parts) {
        if (line === "") continue;
        const id = JSON.parse(line).custom_id as string;
        if (seen.has(id)) dup++;
        seen.add(id);
      }
    }
    rows.push([
      "Batch API (SDK: upload, create, poll)",
      batch.status,
      `${batch.request_counts!.completed} / ${batch.request_counts!.failed}`,
      fmt(doneS, 1),
      fmt(doneS / ideal, 3),
      `${fmt(inProgressS, 1)} s validating; upload ${fmt(uploadS, 1)} s`,
      fmt(stats.rate, 0),
      String(stats.maxPerWindow),
      `${fmt(info.hwm, 0)} (idle ${fmt(idleRss, 0)}, polled max ${fmt(peakSeen, 0)})`,
      fmt((info.cpu - cpu0) * 1e6 / N, 0),
      fmt(busyCores(machine0, machine1), 2),
    ]);
    notes.push(
      `Batch API check: ${seen.size} distinct custom_ids in the output, ${dup} duplicates; provider requests ${stats.count}.`,
    );
  } finally {
    await server.stop();
  }

  // ---------------------------------------------------------------- baseline: POST /v1/runs
  if (!values["skip-runs"]) {
    await fetch(`${mock.url}/__mock/reset`, { method: "POST" });
    const server = await startServer(mock.url, path.join(tmp, "data-runs"));
    const pid = server.child.pid!;
    try {
      const idleRss = procInfo(pid).rss;
      const cpu0 = procInfo(pid).cpu;
      const machine0 = machineCpu();
      const t0 = performance.now();
      const res = await fetch(`${server.url}/v1/runs`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}` },
        body: Bun.file(input).stream(),
      });
      let ok = 0;
      let failed = 0;
      let peakSeen = 0;
      let last = performance.now();
      let rest = "";
      for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
        const parts = (rest + chunk).split("\n");
        rest = parts.pop()!;
        for (const line of parts) {
          if (line === "" || line.startsWith('{"summary"')) continue;
          if (line.includes('"error":null')) ok++;
          else failed++;
        }
        if (performance.now() - last > 250) {
          peakSeen = Math.max(peakSeen, procInfo(pid).rss);
          last = performance.now();
        }
      }
      const doneS = (performance.now() - t0) / 1000;
      const info = procInfo(pid);
      const machine1 = machineCpu();
      const stats = await mockStats(mock.url);
      rows.push([
        "baseline: POST /v1/runs (same lines, streamed)",
        "done",
        `${ok} / ${failed}`,
        fmt(doneS, 1),
        fmt(doneS / ideal, 3),
        "-",
        fmt(stats.rate, 0),
        String(stats.maxPerWindow),
        `${fmt(info.hwm, 0)} (idle ${fmt(idleRss, 0)}, polled max ${fmt(peakSeen, 0)})`,
        fmt((info.cpu - cpu0) * 1e6 / N, 0),
        fmt(busyCores(machine0, machine1), 2),
      ]);
    } finally {
      await server.stop();
    }
  }
} finally {
  await mock.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
}

const table = markdownTable([
  "path",
  "status",
  "ok / failed",
  "time (s)",
  "time / ideal N/R",
  "before requests",
  "mock rate (req/s)",
  "max in 1 s",
  "server peak RSS (MiB)",
  "server CPU per request (µs)",
  "busy cores (machine)",
], rows);
const report = `# Batch API benchmark

${stamp()} · ${runtimeVersion()} · ${machineInfo()} · ${gitRevision()}

${N.toLocaleString("en-US")} lines (${
  fmt(inputBytes / 2 ** 20, 1)
} MiB), ${R} req/s, mock latency ${LATENCY} ms:
ideal N/R = ${fmt(ideal, 1)} s. Time is from \`batches.create\` to the poll that saw \`completed\`
(polls every 250 ms); for \`/v1/runs\` from the POST to the end of the response stream.

${table}

${notes.join("\n")}

Command: \`${rerunCommand("scripts/bench_batch_api.ts")}\`
`;
console.log(report);
if (values.out !== "-") console.log(`written to ${writeResult(values.out!, report)}`);
