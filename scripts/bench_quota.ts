/**
 * Quota benchmark (issue "Quota-aware rate"): the real CLI against the mock provider server
 * enforcing a provider quota, each in its own process.
 *
 * 1. Provider quota 20 req/s (sliding 1 s window), tool at 40 req/s, 2,000 items: every item in
 *    output, the accepted rate settles within 10 % under the quota, 429s under 5 % of requests.
 * 2. The same with `--rate-limit auto` (no rate given).
 * 3. A token quota of 30,000 tokens/min with varied prompt sizes and `--tpm 30000`: no 429 after
 *    the first 10 s.
 *
 * Usage: bun scripts/bench_quota.ts [--items 2000] [--quota 20] [--rate 40] [--latency 200]
 *                                    [--tpm-items 100] [--skip-tokens] [--skip-requests]
 * @module
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { maxPerWindow } from "./mock_provider.ts";

const ROOT = path.resolve(import.meta.dirname ?? ".", "..");
const BUN = process.execPath;

const { values } = parseArgs({
  options: {
    items: { type: "string", default: "2000" },
    quota: { type: "string", default: "20" },
    rate: { type: "string", default: "40" },
    latency: { type: "string", default: "200" },
    "tpm-items": { type: "string", default: "100" },
    "skip-tokens": { type: "boolean", default: false },
    "skip-requests": { type: "boolean", default: false },
  },
});
const ITEMS = Number(values.items);
const QUOTA = Number(values.quota);
const RATE = Number(values.rate);
const LATENCY = Number(values.latency);

interface Arrival {
  t: number;
  status: number;
}

async function startMock(args: string[]): Promise<{ url: string; stop: () => void }> {
  const child = Bun.spawn([
    BUN,
    path.join(ROOT, "scripts/mock_provider.ts"),
    "--port",
    "0",
    ...args,
  ], {
    stdout: "pipe",
    stderr: "inherit",
  });
  const reader = child.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("mock provider exited before printing its URL");
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  const { url } = JSON.parse(text.split("\n")[0]);
  return { url, stop: () => child.kill() };
}

async function arrivals(url: string): Promise<Arrival[]> {
  const body = await (await fetch(`${url}/__mock/arrivals`)).json() as { arrivals: Arrival[] };
  return body.arrivals;
}

async function runCli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stderr: string; ms: number }> {
  const started = performance.now();
  const child = Bun.spawn([BUN, path.join(ROOT, "cli.ts"), "run", ...args], {
    env: { ...process.env, ...env },
    stdout: "ignore",
    stderr: "pipe",
  });
  const [stderr, code] = await Promise.all([new Response(child.stderr).text(), child.exited]);
  return { code, stderr, ms: performance.now() - started };
}

function lines(file: string): number {
  return fs.existsSync(file)
    ? fs.readFileSync(file, "utf8").split("\n").filter((l) => l.trim()).length
    : 0;
}

/** Accepted req/s over the second half of the run, when the rate has settled. */
function settledRate(all: Arrival[]): { settled: number; overall: number; maxWindow: number } {
  const ok = all.filter((a) => a.status === 200).map((a) => a.t);
  const first = ok[0];
  const last = ok[ok.length - 1];
  const mid = first + (last - first) / 2;
  const late = ok.filter((t) => t >= mid);
  return {
    settled: ((late.length - 1) * 1000) / (last - late[0]),
    overall: ((ok.length - 1) * 1000) / (last - first),
    maxWindow: maxPerWindow(ok),
  };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mft-bench-quota-"));
const rows: string[] = [];
const env = { OPENAI_API_KEY: "bench-key" };

async function requestQuota(label: string, rateArg: string): Promise<void> {
  const mock = await startMock([
    "--latency",
    String(LATENCY),
    "--quota-requests",
    String(QUOTA),
    "--quota-window",
    "1000",
  ]);
  try {
    const input = path.join(dir, "in.jsonl");
    fs.writeFileSync(
      input,
      Array.from(
        { length: ITEMS },
        (_, i) => JSON.stringify({ id: `q${i}`, prompt: `question number ${i}` }),
      ).join("\n") +
        "\n",
    );
    const out = path.join(dir, `${label}-out.jsonl`);
    const errs = path.join(dir, `${label}-errors.jsonl`);
    const r = await runCli(
      [
        input,
        "--provider",
        "openai",
        "--base-url",
        `${mock.url}/v1`,
        "--rate-limit",
        rateArg,
        "--output",
        out,
        "--errors",
        errs,
      ],
      env,
    );
    const all = await arrivals(mock.url);
    const rejected = all.filter((a) => a.status === 429).length;
    const rate = settledRate(all);
    const summary = r.stderr.split("\n").find((l) => l.startsWith("rate:")) ?? "";
    rows.push(
      `| ${label} | ${QUOTA} | ${rateArg} | ${ITEMS} | ${lines(out)} | ${
        lines(errs)
      } | ${all.length} | ${rejected} (${((100 * rejected) / all.length).toFixed(2)} %) | ${
        rate.overall.toFixed(2)
      } | ${rate.settled.toFixed(2)} (${
        ((100 * rate.settled) / QUOTA).toFixed(1)
      } % of quota) | ${rate.maxWindow} | ${(r.ms / 1000).toFixed(1)} s | exit ${r.code} · ${
        summary.replace(/\|/g, "/")
      } |`,
    );
    console.error(rows[rows.length - 1]);
  } finally {
    mock.stop();
  }
}

async function tokenQuota(): Promise<string> {
  const TPM = 30_000;
  const n = Number(values["tpm-items"]);
  const mock = await startMock([
    "--latency",
    String(LATENCY),
    "--token-quota",
    String(TPM),
    "--token-window",
    "60000",
  ]);
  try {
    const input = path.join(dir, "tok.jsonl");
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const filler = "lorem ipsum dolor sit amet consectetur adipiscing elit ".repeat(200);
    fs.writeFileSync(
      input,
      Array.from({ length: n }, (_, i) => {
        const chars = 100 + Math.floor(rnd() * 3900); // 25..1000 prompt tokens
        return JSON.stringify({
          id: `t${i}`,
          prompt: `${i}: ${filler.slice(0, chars)}`,
          max_tokens: 50 + Math.floor(rnd() * 250),
        });
      }).join("\n") + "\n",
    );
    const out = path.join(dir, "tok-out.jsonl");
    const errs = path.join(dir, "tok-errors.jsonl");
    const r = await runCli(
      [
        input,
        "--provider",
        "openai",
        "--base-url",
        `${mock.url}/v1`,
        "--rate-limit",
        "50",
        "--tpm",
        String(TPM),
        "--output",
        out,
        "--errors",
        errs,
      ],
      env,
    );
    const all = await arrivals(mock.url);
    const t0 = all[0]?.t ?? 0;
    const late429 = all.filter((a) => a.status === 429 && a.t - t0 > 10_000).length;
    const early429 = all.filter((a) => a.status === 429 && a.t - t0 <= 10_000).length;
    return `| ${TPM} | ${n} | ${lines(out)} | ${
      lines(errs)
    } | ${all.length} | ${early429} | ${late429} | ${
      (r.ms / 1000).toFixed(1)
    } s | exit ${r.code} |`;
  } finally {
    mock.stop();
  }
}

console.error(
  `bench_quota: ${ITEMS} items, provider quota ${QUOTA} req/s, tool at ${RATE} req/s, latency ${LATENCY} ms`,
);
if (!values["skip-requests"]) {
  await requestQuota("fixed", String(RATE));
  await requestQuota("auto", "auto");
}
const tokenRow = values["skip-tokens"] ? undefined : await tokenQuota();

const report = [
  `# Quota benchmark`,
  ``,
  `${
    new Date().toISOString().slice(0, 10)
  } · Bun ${Bun.version} · ${os.cpus().length} cores · mock latency ${LATENCY} ms`,
  `· \`bun scripts/bench_quota.ts --items ${ITEMS} --quota ${QUOTA} --rate ${RATE}\``,
  ``,
  `Requests: the mock provider allows ${QUOTA} accepted requests in any sliding 1 s window and answers the rest 429 at once`,
  `with \`retry-after-ms\`. "settled" is the accepted rate over the second half of the run.`,
  ``,
  `| mode | quota req/s | --rate-limit | items | output | errors | requests | 429s | accepted req/s (whole run) | settled req/s | max accepted in 1 s | wall | CLI summary |`,
  `| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |`,
  ...rows,
  ``,
  ...(tokenRow
    ? [
      `Tokens: the mock allows 30,000 tokens (prompt chars/4 + max_tokens) in any sliding 60 s window; prompts of 25-1,000`,
      `tokens and max_tokens of 50-300, \`--tpm 30000 --rate-limit 50\`.`,
      ``,
      `| tpm quota | items | output | errors | requests | 429s in first 10 s | 429s after 10 s | wall | exit |`,
      `| --- | --- | --- | --- | --- | --- | --- | --- | --- |`,
      tokenRow,
    ]
    : []),
  ``,
].join("\n");
fs.mkdirSync(path.join(ROOT, "bench-results"), { recursive: true });
fs.writeFileSync(path.join(ROOT, "bench-results/quota.md"), report);
console.log(report);
fs.rmSync(dir, { recursive: true, force: true });
