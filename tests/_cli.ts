/**
 * The command line in a subprocess, for the end-to-end tests: the child's environment, its
 * output and exit code, and the JSONL files it reads and writes.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";

/** The repository. */
export const ROOT = path.resolve(import.meta.dir, "..");
/** The CLI's entry point. */
export const CLI = path.join(ROOT, "cli.ts");

/** What a finished child printed, and its exit code. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options for {@linkcode cliHarness}. */
export interface CliHarnessOptions {
  /** The children's working directory, read at each start (tests make it in `beforeAll`). */
  dir: () => string;
  /** Variables of this process the children do not inherit (keys, base URLs, settings). */
  drop: RegExp;
  /** Variables set for every child, under each call's own. */
  env?: Record<string, string>;
  /** The program and its first arguments, read at each start. @default [process.execPath, CLI] */
  command?: () => string[];
  /** Starts each child in its own process group, as a terminal would (Ctrl-C signals the group). */
  detached?: boolean;
}

/** Waits for a child started with piped stdout and stderr to exit; returns what it printed. */
export async function finish(p: {
  stdout: ReadableStream<Uint8Array>;
  stderr: ReadableStream<Uint8Array>;
  exited: Promise<number>;
}): Promise<CliResult> {
  const [stdout, stderr, code] = await Promise.all([
    new Response(p.stdout).text(),
    new Response(p.stderr).text(),
    p.exited,
  ]);
  return { code, stdout, stderr };
}

/** The records of a JSONL file, blank lines skipped; none if the file does not exist. */
export function readJsonl(file: string): Record<string, unknown>[] {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, "utf8").split("\n").filter((l) => l.trim() !== "").map((l) =>
    JSON.parse(l)
  );
}

/** Helpers that start the CLI as {@linkcode CliHarnessOptions} say. */
export function cliHarness(o: CliHarnessOptions) {
  /** This process's environment without `o.drop`, then `o.env`, then `extra`. */
  const env = (extra: Record<string, string> = {}): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined && !o.drop.test(k)) out[k] = v;
    }
    return { ...out, ...o.env, ...extra };
  };

  /** Starts the CLI with `args`; `stdin` is written to it, else it has none. */
  const spawnCli = (args: string[], extra: Record<string, string> = {}, stdin?: string) =>
    Bun.spawn([...(o.command?.() ?? [process.execPath, CLI]), ...args], {
      cwd: o.dir(),
      env: env(extra),
      stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin),
      stdout: "pipe",
      stderr: "pipe",
      detached: o.detached ?? false,
    });

  /** Runs the CLI with `args` to its end. */
  const cli = (
    args: string[],
    extra: Record<string, string> = {},
    stdin?: string,
  ): Promise<CliResult> => finish(spawnCli(args, extra, stdin));

  /** Writes `lines` (objects as JSON, strings as they are) to `name` in the directory. */
  const file = (name: string, lines: unknown[]): string => {
    const p = path.join(o.dir(), name);
    fs.writeFileSync(
      p,
      lines.map((l) => (typeof l === "string" ? l : JSON.stringify(l))).join("\n") + "\n",
    );
    return p;
  };

  return { env, spawnCli, cli, file };
}
