/**
 * Helpers shared by the benchmarks in `scripts/bench_*.ts`: which runtime runs us, how to start
 * another script under it, the mock provider in its own process, and markdown output.
 * Runs under Bun and Deno (node: built-ins only, plus the runtime globals).
 * @module
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** The runtime running this process. */
export type Runtime = "bun" | "deno" | "node";

/** `bun`, `deno` or `node`. */
export function currentRuntime(): Runtime {
  if ("Bun" in globalThis) return "bun";
  if ("Deno" in globalThis) return "deno";
  return "node";
}

/** e.g. `Bun 1.4.4` or `Deno 2.9.6 (V8 …)`. */
export function runtimeVersion(): string {
  const g = globalThis as unknown as {
    Bun?: { version: string };
    Deno?: { version: { deno: string; v8: string } };
  };
  if (g.Bun) return `Bun ${g.Bun.version}`;
  if (g.Deno) return `Deno ${g.Deno.version.deno} (V8 ${g.Deno.version.v8})`;
  return `Node ${process.version}`;
}

/** One line about the machine: cores, CPU model, memory, kernel. */
export function machineInfo(): string {
  const cpus = os.cpus();
  const model = cpus[0]?.model?.trim() || "unknown CPU";
  const gib = (os.totalmem() / 2 ** 30).toFixed(1);
  return `${cpus.length} cores (nproc), ${model}, ${gib} GiB RAM, ${os.type()} ${os.release()}`;
}

/** The repository root (this file lives in `scripts/`). */
export const ROOT: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Binary of `runtime`: ours when it is the one running, else the one in node_modules/.bin. */
export function runtimeBinary(runtime: Runtime): string {
  if (runtime === currentRuntime()) return process.execPath;
  return path.join(ROOT, "node_modules", ".bin", runtime);
}

/** argv that runs `script` under `runtime` (Deno gets `run -A`). */
export function scriptCommand(runtime: Runtime, script: string, args: string[]): string[] {
  const bin = runtimeBinary(runtime);
  return runtime === "deno" ? [bin, "run", "-A", script, ...args] : [bin, script, ...args];
}

/**
 * Bun's fetch keeps at most 256 requests open unless `BUN_CONFIG_MAX_HTTP_REQUESTS` is set
 * before the process starts. Under Bun without it, this re-runs the current script with it set
 * (inheriting stdio) and exits with the child's code; elsewhere it returns at once.
 */
export async function ensureBunMaxHttpRequests(value = 65535): Promise<void> {
  if (currentRuntime() !== "bun" || process.env.BUN_CONFIG_MAX_HTTP_REQUESTS) return;
  const child = spawn(process.execPath, process.argv.slice(1), {
    stdio: "inherit",
    env: { ...process.env, BUN_CONFIG_MAX_HTTP_REQUESTS: String(value) },
  });
  const code = await new Promise<number>((resolve) => {
    child.on("exit", (c, signal) => resolve(c ?? (signal ? 128 : 1)));
  });
  process.exit(code);
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The mock provider server running in a child process. */
export interface MockServer {
  /** e.g. `http://127.0.0.1:40123`. */
  url: string;
  child: ChildProcess;
  /** Stops the child (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
}

/**
 * Starts `tests/mocks/mock_provider.ts` in its own process (its own event loop: sharing one with a
 * client that opens thousands of connections overflows the listen queue) and waits for its URL.
 */
export function startMockServer(runtime: Runtime, args: string[]): Promise<MockServer> {
  const [bin, ...rest] = scriptCommand(
    runtime,
    path.join(ROOT, "scripts", "start_mock_provider.ts"),
    args,
  );
  const child = spawn(bin, rest, { stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  return new Promise((resolve, reject) => {
    let buffer = "";
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString("utf8");
      const nl = buffer.indexOf("\n");
      if (nl < 0) return;
      child.stdout!.off("data", onData);
      child.stdout!.resume();
      try {
        const { url } = JSON.parse(buffer.slice(0, nl)) as { url: string };
        resolve({
          url,
          child,
          async stop() {
            if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
            await exited;
          },
        });
      } catch (error) {
        child.kill("SIGTERM");
        reject(new Error(`mock provider printed ${JSON.stringify(buffer)}: ${error}`));
      }
    };
    child.stdout!.on("data", onData);
    child.on("error", reject);
    child.on("exit", (code) => reject(new Error(`mock provider exited early (code ${code})`)));
  });
}

/** A markdown table. */
export function markdownTable(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/** Writes `text` to `file` under the repository root, creating the folder. Returns the path. */
export function writeResult(file: string, text: string): string {
  const full = path.resolve(ROOT, file);
  fs.mkdirSync(path.dirname(full), { recursive: true });
  fs.writeFileSync(full, text.endsWith("\n") ? text : text + "\n");
  return full;
}

/** `1234.5` → `1,234.5`. */
export function fmt(n: number, digits = 1): string {
  return n.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** Today as YYYY-MM-DD HH:MM UTC. */
export function stamp(): string {
  return new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC";
}

/** Busy and total CPU time of the whole machine from /proc/stat, in ticks; zeros off Linux. */
export function machineCpu(): { busy: number; total: number } {
  try {
    const line = fs.readFileSync("/proc/stat", "utf8").split("\n")[0];
    const ticks = line.trim().split(/\s+/).slice(1).map(Number);
    const total = ticks.reduce((a, b) => a + b, 0);
    const idle = ticks[3] + (ticks[4] ?? 0); // idle + iowait
    return { busy: total - idle, total };
  } catch {
    return { busy: 0, total: 0 };
  }
}

/** Cores busy on the whole machine between two {@linkcode machineCpu} readings. */
export function busyCores(
  a: { busy: number; total: number },
  b: { busy: number; total: number },
): number {
  const total = b.total - a.total;
  return total > 0 ? ((b.busy - a.busy) / total) * os.cpus().length : 0;
}

/** The checked-out commit, e.g. `6e24a5b` or `6e24a5b + uncommitted changes`; "unknown" without git. */
export function gitRevision(): string {
  try {
    const git = (args: string[]) =>
      execFileSync("git", args, {
        cwd: ROOT,
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
      })
        .trim();
    const head = git(["rev-parse", "--short", "HEAD"]);
    const dirty = git(["status", "--porcelain", "--untracked-files=no"]) !== "";
    return dirty ? `${head} + uncommitted changes` : head;
  } catch {
    return "unknown";
  }
}

/** How to rerun the current script: `bun scripts/x.ts …` or `deno run -A scripts/x.ts …`. */
export function rerunCommand(script: string): string {
  const runtime = currentRuntime();
  const prefix = runtime === "deno" ? "deno run -A" : runtime;
  return [prefix, script, ...process.argv.slice(2)].join(" ");
}
