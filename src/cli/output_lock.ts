/**
 * One writer per output file: `<output>.lock` names the process writing it. Two runs appending
 * to one output interleave and duplicate ids, so a second one is refused at once (a
 * `ConfigError`: exit 2, naming the holder); a lock left by a killed run is taken over. A
 * runtime edge: plain `node:` files and `/proc` where there is one.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import process from "node:process";
import { ConfigError } from "../errors.ts";

/** What the lock file holds (JSON, one line). */
export interface LockContent {
  pid: number;
  /** The process's start time (`/proc/<pid>/stat` field 22, clock ticks since boot), if known. */
  start?: number;
  /** Last heartbeat, ms since the epoch. */
  heartbeat: number;
  /** Random, so a holder can tell its own lock from a successor's with a reused pid. */
  token: string;
}

/** Options for {@linkcode acquireOutputLock}. */
export interface OutputLockOptions {
  /** Says that a stale lock was taken over, and that a held lock was lost. */
  log?: (line: string) => void;
  /** How often the holder rewrites its heartbeat. @default 5000 */
  heartbeatMs?: number;
  /** A heartbeat older than this is stale, even when the pid seems alive. @default 60000 */
  staleMs?: number;
  /** Time source, ms since the epoch. @default Date.now */
  now?: () => number;
}

/** A lock held by this process. */
export interface OutputLock {
  /** The lock file's path. */
  path: string;
  /** Aborts if another process took the lock over (this one looked dead or frozen). */
  lost: AbortSignal;
  /** Removes the lock (if it is still ours) and stops the heartbeat. Idempotent. */
  release(): void;
}

/** The start time of process `pid` in clock ticks since boot, or undefined where unknown. */
export function processStart(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const start = Number(fields[19]); // field 22 of the whole line
    return Number.isFinite(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

/** True if `pid` runs, false if it does not, undefined when this runtime may not ask. */
function pidAlive(pid: number): boolean | undefined {
  try {
    process.kill(pid, 0);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException)?.code;
    if (code === "ESRCH") return false;
    if (code !== "EPERM") return undefined; // e.g. Deno without --allow-run
  }
  // A zombie (dead, not yet reaped by a parent that is itself gone) writes nothing.
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat[stat.lastIndexOf(")") + 2] !== "Z";
  } catch {
    return true; // no /proc: kill(0) said it exists
  }
}

function readLock(file: string): { content?: LockContent; text: string; mtimeMs: number } {
  const text = fs.readFileSync(file, "utf8");
  const mtimeMs = fs.statSync(file).mtimeMs;
  try {
    const content = JSON.parse(text) as LockContent;
    if (Number.isInteger(content.pid) && typeof content.heartbeat === "number") {
      return { content, text, mtimeMs };
    }
  } catch {
    // being written, or garbage
  }
  return { text, mtimeMs };
}

/** Why a lock is stale, or undefined when its holder may still be writing. */
function staleness(
  lock: ReturnType<typeof readLock>,
  now: number,
  staleMs: number,
): string | undefined {
  const c = lock.content;
  if (c === undefined) {
    return now - lock.mtimeMs > staleMs ? "the lock file is unreadable and old" : undefined;
  }
  if (c.pid === process.pid && c.start === processStart(process.pid)) {
    return undefined; // our own, from another part of this process: held
  }
  const alive = pidAlive(c.pid);
  if (alive === false) return `process ${c.pid} is gone`;
  if (alive === true && c.start !== undefined) {
    const start = processStart(c.pid);
    if (start !== undefined && start !== c.start) {
      return `process ${c.pid} is gone (its pid now belongs to another process)`;
    }
  }
  const age = now - c.heartbeat;
  if (age > staleMs) return `its last heartbeat was ${Math.round(age / 1000)} s ago`;
  return undefined;
}

/**
 * Takes `<output>.lock` for this process, or throws.
 *
 * The lock file is created with an exclusive create, so of two runs starting together one
 * wins. A lock whose process is gone (dead, or its pid reused by a process that started at
 * another time) or whose heartbeat is older than `staleMs` is taken over, with a line on `log`.
 * While held, the heartbeat is rewritten every `heartbeatMs`; if another process took the lock
 * over meanwhile, `lost` aborts.
 *
 * @param output The output file the lock guards.
 * @throws {ConfigError} when another live process holds it (its pid in the message).
 */
export function acquireOutputLock(output: string, options: OutputLockOptions = {}): OutputLock {
  const file = `${output}.lock`;
  const now = options.now ?? Date.now;
  const heartbeatMs = options.heartbeatMs ?? 5000;
  const staleMs = options.staleMs ?? 60_000;
  const token = crypto.randomUUID();
  const start = processStart(process.pid);
  const content = (): string =>
    JSON.stringify({ pid: process.pid, start, heartbeat: now(), token } satisfies LockContent) +
    "\n";

  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  let fd: number | undefined;
  for (let tries = 0; fd === undefined; tries++) {
    try {
      fd = fs.openSync(file, "wx");
      fs.writeSync(fd, content());
    } catch (error) {
      if ((error as NodeJS.ErrnoException)?.code !== "EEXIST" || tries >= 5) throw error;
      let held: ReturnType<typeof readLock>;
      try {
        held = readLock(file);
      } catch {
        continue; // removed meanwhile: try again
      }
      const why = staleness(held, now(), staleMs);
      if (why === undefined) {
        const c = held.content;
        throw new ConfigError(
          c
            ? `${output} is being written by process ${c.pid} (lock ${file}, heartbeat ${
              Math.max(0, Math.round((now() - c.heartbeat) / 1000))
            } s ago): wait for that run to end or stop it; a second writer would mix its lines in`
            : `${output} is locked by a process that is starting (lock ${file}); try again`,
        );
      }
      // Remove only the lock judged stale: if it changed meanwhile, look again.
      try {
        if (fs.readFileSync(file, "utf8") !== held.text) continue;
        fs.rmSync(file);
      } catch {
        continue;
      }
      options.log?.(`taking over the stale lock ${file}: ${why}`);
    }
  }

  const lost = new AbortController();
  let released = false;
  const ours = (): boolean => {
    try {
      return readLock(file).content?.token === token;
    } catch {
      return false;
    }
  };
  const timer = setInterval(() => {
    if (!ours()) {
      clearInterval(timer);
      if (!lost.signal.aborted) {
        options.log?.(`lost the lock ${file}: another process took it over; stopping`);
        lost.abort(new DOMException(`lost the lock ${file}`, "AbortError"));
      }
      return;
    }
    try {
      const bytes = new TextEncoder().encode(content());
      fs.ftruncateSync(fd!, 0);
      // Bytes with an explicit position: Deno's node:fs ignores the position of the string
      // form and writes at the file offset, past the truncation, behind a run of NULs.
      fs.writeSync(fd!, bytes, 0, bytes.length, 0);
    } catch {
      // a full disk: the next beat tries again; a stale heartbeat is what others then see
    }
  }, heartbeatMs);
  (timer as { unref?: () => void }).unref?.();
  const release = () => {
    if (released) return;
    released = true;
    clearInterval(timer);
    process.off("exit", release);
    try {
      fs.closeSync(fd!);
    } catch {
      // already closed
    }
    if (ours()) fs.rmSync(file, { force: true });
  };
  // A process.exit() anywhere still removes it; kill -9 leaves it, and the next run takes over.
  process.on("exit", release);
  return { path: file, lost: lost.signal, release };
}
