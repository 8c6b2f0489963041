/**
 * What rate a run gets on Cloudflare Workers' runtime (workerd, run locally by Miniflare): the
 * mock provider answers in `--latency` ms and a run asks for `--rate` req/s; the rate is measured
 * at the mock. Three rows per rate: the app as it was (no cap: local workerd does not enforce
 * Cloudflare's 6 open outgoing connections per invocation, so this is what `wrangler dev` shows
 * and production does not), src/adapter/workers/worker.ts as shipped (each run capped at 6 open, summary says so),
 * and worker.ts fanning requests out over `--objects` Durable Objects (6 open in each).
 *
 *   bun scripts/bench_worker.ts [--latency 2000] [--rate 20,2] [--requests 60] [--objects 8]
 *
 * Prints a markdown table (bench-results/ship.md holds a run of it).
 * @module
 */
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { maxPerWindow, startMockProvider } from "../tests/mocks/mock_provider.ts";
import { machineInfo, ROOT, runtimeVersion } from "./_bench_util.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    latency: { type: "string", default: "2000" },
    rate: { type: "string", default: "20,2" },
    requests: { type: "string", default: "60" },
    objects: { type: "string", default: "8" },
  },
});
const latencyMs = Number(values.latency);
const rates = values.rate.split(",").map(Number);
const requests = Number(values.requests);
const objects = Number(values.objects);
/** A made-up key for this run only (keys never live in the source). */
const KEY = `bench-key-${crypto.randomUUID()}`;
const TOKEN = "bench-token";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mft-bench-worker-"));
// The app without the runtime cap, for the "before" row: same provider, same settings.
const uncappedEntry = path.join(dir, "uncapped.ts");
fs.writeFileSync(
  uncappedEntry,
  `import { createApp } from ${JSON.stringify(path.join(ROOT, "src/server/app.ts"))};
import { createProvider } from ${
    JSON.stringify(path.join(ROOT, "src/providers/create_provider.ts"))
  };
let app;
export default {
  fetch(request, env, ctx) {
    app ??= createApp({
      provider: createProvider({ provider: "openai", baseUrl: env.MFT_BASE_URL, apiKey: env.OPENAI_API_KEY }),
      rate: Number(env.MFT_RATE_LIMIT),
      token: env.MFT_SERVER_TOKEN,
      runtimeLimit: null,
    });
    return app.fetch(request, env, ctx);
  },
};
`,
);

async function bundle(entry: string, name: string): Promise<string> {
  const outfile = path.join(dir, name, "worker.js");
  await build({
    entryPoints: [entry],
    bundle: true,
    format: "esm",
    platform: "browser",
    conditions: ["workerd", "worker", "browser"],
    outfile,
    logLevel: "error",
  });
  return outfile;
}

const compatibilityDate = JSON.parse(
  fs.readFileSync(path.join(ROOT, "wrangler.jsonc"), "utf8").split("\n")
    .filter((l) => !/^\s*\/\//.test(l)).join("\n"),
).compatibility_date as string;

interface Row {
  variant: string;
  rate: number;
  mockRate: number;
  maxOpen: number;
  wallS: number;
  ok: number;
  // deno-lint-ignore no-explicit-any
  limit?: any;
}

async function measure(
  script: string,
  variant: string,
  rate: number,
  fanOut?: number,
): Promise<Row> {
  const mock = await startMockProvider({ latencyMs, requireKey: KEY });
  const mf = new Miniflare({
    modules: true,
    scriptPath: script,
    modulesRoot: path.dirname(script),
    compatibilityDate,
    cf: false,
    host: "127.0.0.1",
    port: 0,
    bindings: {
      MFT_SERVER_TOKEN: TOKEN,
      MFT_PROVIDER: "openai",
      MFT_BASE_URL: `${mock.url}/v1`,
      OPENAI_API_KEY: KEY,
      MFT_RATE_LIMIT: String(rate),
      ...(fanOut ? { MFT_FANOUT_OBJECTS: String(fanOut) } : {}),
    },
    durableObjects: fanOut ? { MFT_FANOUT: "FanOutObject" } : undefined,
  });
  try {
    const url = await mf.ready;
    const body = Array.from(
      { length: requests },
      (_, i) => JSON.stringify({ id: `b${i}`, prompt: `${i}` }),
    ).join("\n") + "\n";
    const started = performance.now();
    const res = await fetch(new URL("/v1/runs", url), {
      method: "POST",
      body,
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const lines = (await res.text()).trim().split("\n").map((l) => JSON.parse(l));
    const wallS = (performance.now() - started) / 1000;
    const summary = lines.at(-1).summary;
    const stats = mock.stats();
    return {
      variant,
      rate,
      mockRate: stats.rate,
      // Answers take `latencyMs`, so arrivals within 95 % of it were open at the same time.
      maxOpen: maxPerWindow(mock.arrivals().map((a) => a.t), latencyMs * 0.95),
      wallS,
      ok: summary.ok,
      limit: summary.runtime_limit,
    };
  } finally {
    await mf.dispose();
    await mock.close();
  }
}

const before = await bundle(uncappedEntry, "uncapped");
const shipped = await bundle(path.join(ROOT, "src/adapter/workers/worker.ts"), "shipped");
const rows: Row[] = [];
for (const rate of rates) {
  rows.push(await measure(before, "before: no cap (what local workerd allows)", rate));
  rows.push(await measure(shipped, "worker.ts: capped at 6 open per run", rate));
  rows.push(
    await measure(shipped, `worker.ts, MFT_FANOUT_OBJECTS=${objects}`, rate, objects),
  );
}
fs.rmSync(dir, { recursive: true, force: true });

const fmt = (n: number) => n.toFixed(2);
console.log(`# Workers (workerd via Miniflare) rate

- date: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC
- runtime: ${runtimeVersion()} driving Miniflare (workerd, compatibility date ${compatibilityDate})
- machine: ${machineInfo()}
- command: \`bun scripts/bench_worker.ts --latency ${latencyMs} --rate ${values.rate} --requests ${requests} --objects ${objects}\`
- mock latency ${latencyMs} ms; ${requests} requests per run, one run per row; rate measured at the mock: (count − 1) / (last − first arrival); open = most arrivals within 0.95 × latency

| R asked | variant | mock saw req/s | most open | wall | ok | summary runtime_limit.achievable_rate |
| --- | --- | --- | --- | --- | --- | --- |
${
  rows.map((r) =>
    `| ${r.rate} | ${r.variant} | ${fmt(r.mockRate)} | ${r.maxOpen} | ${
      r.wallS.toFixed(1)
    } s | ${r.ok} | ${r.limit ? fmt(r.limit.achievable_rate) : "(none)"} |`
  ).join("\n")
}`);
