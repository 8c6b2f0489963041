/**
 * The clients of `bench_rate.ts --clients`: the CLI as users start it on Bun, Deno and Node (the
 * packed npm package's bin), the compiled single executable, and a bare Node client as the
 * baseline. Also what the receiving
 * server's arrival times say about a run ({@linkcode wireStats}).
 *
 * The bare client is this file bundled for Node and started with `MFT_BARE_CLIENT=1`: it sends
 * its first request alone and waits for the answer (as every run does), then sends request i at
 * `t0 + i/R` on `performance.now()` (a timer to the next due time, every due request sent:
 * drift-free) with the global fetch.
 * @module
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import process from "node:process";
import { maxPerWindow } from "../tests/mocks/mock_provider.ts";
import { ROOT, runtimeBinary } from "./_bench_util.ts";

/** The clients, in table order. */
export const CLIENTS = ["bun", "deno", "node", "binary", "node-bare"] as const;
/** One of {@linkcode CLIENTS}. */
export type Client = (typeof CLIENTS)[number];

/** How a user starts each client, for the table. */
export const CLIENT_LABELS: Record<Client, string> = {
  bun: "Bun (`bun cli.ts`)",
  deno: "Deno (`deno run -A cli.ts`)",
  node: "Node (`npx model-fine-tuner`, the packed npm package's bin)",
  binary: "single executable (`bun build --compile`: `./model-fine-tuner`)",
  "node-bare": "bare Node client (drift-free loop + global fetch): baseline",
};

/** Most arrivals allowed in any 1 s window, as a multiple of R (the targets). */
export const WINDOW_TARGET: Record<Client, number> = {
  bun: 1.05,
  deno: 1.10,
  node: 1.10,
  binary: 1.05, // Bun inside
  "node-bare": 1.10,
};

/** Highest rate each client is held to (the targets). */
export const MAX_TARGET_RATE: Record<Client, number> = {
  bun: 2000,
  deno: 1000,
  node: 1000,
  binary: 2000,
  "node-bare": 1000,
};

/** Built once per benchmark: the unpacked npm package and the bare client's bundle. */
export interface Prepared {
  /** `dist/npm/cli.js` inside the unpacked `npm pack` tarball. */
  nodeBin?: string;
  /** The bare client bundled for Node. */
  bareBin?: string;
  /** The single executable `scripts/compile` builds. */
  binary?: string;
}

/**
 * Packs the npm package (its `prepack` builds `dist/npm`) and unpacks it into `dir`, next to a
 * `node_modules` link to ours (the dependencies the package declares, offline); bundles the
 * bare client for Node.
 */
export function prepareClients(clients: readonly Client[], dir: string): Prepared {
  fs.mkdirSync(dir, { recursive: true });
  const prepared: Prepared = {};
  if (clients.includes("node")) {
    const out = execFileSync("npm", ["pack", "--silent", "--pack-destination", dir], {
      cwd: ROOT,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    });
    const tarball = path.join(dir, out.trim().split("\n").pop()!);
    execFileSync("tar", ["xzf", tarball, "-C", dir]);
    const link = path.join(dir, "node_modules");
    if (!fs.existsSync(link)) fs.symlinkSync(path.join(ROOT, "node_modules"), link);
    prepared.nodeBin = path.join(dir, "package", "dist", "npm", "cli.js");
  }
  if (clients.includes("binary")) {
    prepared.binary = path.join(dir, "model-fine-tuner");
    execFileSync("sh", ["scripts/compile", "--outfile", prepared.binary, "--skip-deno"], {
      cwd: ROOT,
      stdio: ["ignore", "ignore", "inherit"],
    });
  }
  if (clients.includes("node-bare")) {
    prepared.bareBin = path.join(dir, "bare_client.mjs");
    execFileSync(runtimeBinary("bun"), [
      "build",
      path.join(ROOT, "scripts", "_rate_clients.ts"),
      "--target=node",
      "--outfile",
      prepared.bareBin,
    ], { stdio: ["ignore", "ignore", "inherit"] });
  }
  return prepared;
}

/** What one client run needs. */
export interface ClientRun {
  input: string;
  outDir: string;
  rate: number;
  /** The receiver's base URL, without `/v1`. */
  baseUrl: string;
  /** Requests to send, the first (sent alone) included. */
  n: number;
}

/** argv and environment that start `client` for one run. */
export function clientCommand(
  client: Client,
  prepared: Prepared,
  run: ClientRun,
): { argv: string[]; env: Record<string, string> } {
  const env: Record<string, string> = {
    ...process.env as Record<string, string>,
    OPENAI_API_KEY: "bench-key",
    DENO_NO_UPDATE_CHECK: "1",
    NO_COLOR: "1",
  };
  const args = [
    "run",
    run.input,
    "--provider",
    "openai",
    "--base-url",
    `${run.baseUrl}/v1`,
    "--model",
    "gpt-bench",
    "--rate-limit",
    String(run.rate),
    "--max-attempts",
    "1",
    "--timeout",
    "30s",
    "--output",
    path.join(run.outDir, "output.jsonl"),
    "--overwrite",
    "-q",
  ];
  const cli = path.join(ROOT, "cli.ts");
  switch (client) {
    case "bun":
      return { argv: [runtimeBinary("bun"), cli, ...args], env };
    case "deno":
      return { argv: [runtimeBinary("deno"), "run", "-A", cli, ...args], env };
    case "node":
      return { argv: ["node", prepared.nodeBin!, ...args], env };
    case "binary":
      return { argv: [prepared.binary!, ...args], env };
    case "node-bare":
      return {
        argv: ["node", prepared.bareBin!, `${run.baseUrl}/v1/chat/completions`, String(run.rate)],
        env: { ...env, MFT_BARE_CLIENT: "1", MFT_BARE_N: String(run.n) },
      };
  }
}

/** What the receiving server saw of one run. */
export interface WireStats {
  /** Arrivals, the first (sent alone) included. */
  count: number;
  /** Rate from the second arrival (the first after the gate opened) to the last, req/s. */
  achieved: number;
  /** Most arrivals in any sliding 1 s window, from the second arrival on. */
  maxWindow: number;
  /** Arrivals in the first second after the second arrival, that one included. */
  firstSecond: number;
  /** Most arrivals in any 250 ms slice, from the second arrival on (the clumps). */
  maxQuarter: number;
}

/** Stats of arrival times (ms, any order) for one run. */
export function wireStats(arrivals: readonly number[]): WireStats {
  const t = [...arrivals].sort((a, b) => a - b);
  const measured = t.slice(1);
  const span = measured.length > 1 ? measured[measured.length - 1] - measured[0] : 0;
  return {
    count: t.length,
    achieved: span > 0 ? ((measured.length - 1) * 1000) / span : 0,
    maxWindow: maxPerWindow(measured),
    firstSecond: measured.filter((x) => x < measured[0] + 1000).length,
    maxQuarter: maxPerWindow(measured, 250),
  };
}

/** The bare baseline: first request alone, then a drift-free loop over the global fetch. */
async function bareClient(url: string, rate: number, n: number): Promise<void> {
  const send = async (i: number) => {
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { authorization: "Bearer bench-key", "content-type": "application/json" },
        body: JSON.stringify({
          model: "gpt-bench",
          messages: [{ role: "user", content: `Benchmark request ${i}` }],
        }),
      });
      await res.arrayBuffer();
    } catch {
      // counted at the receiver
    }
  };
  await send(0);
  const pending: Promise<void>[] = [];
  const t0 = performance.now();
  let i = 1;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (i < n && t0 + ((i - 1) * 1000) / rate <= now) pending.push(send(i++));
      if (i >= n) return resolve();
      setTimeout(tick, Math.max(0, t0 + ((i - 1) * 1000) / rate - performance.now()));
    };
    tick();
  });
  await Promise.all(pending);
}

if (process.env.MFT_BARE_CLIENT === "1") {
  const [url, rate] = process.argv.slice(2);
  await bareClient(url, Number(rate), Number(process.env.MFT_BARE_N));
}
