/**
 * A real `redis-server` for tests and benchmarks: started on a free loopback port (or a unix
 * socket) with persistence off, stoppable and restartable on the same address, killed after.
 * Runs under Bun and Deno (node: built-ins only).
 *
 * CLI: `bun scripts/start_redis.ts [--unix]` prints `{"url":"redis://127.0.0.1:PORT/0"}`
 * (or `{"url":"/tmp/…/redis.sock"}`) and serves until SIGTERM/SIGINT.
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";

/** Options for {@linkcode startRedisServer}. */
export interface RedisServerOptions {
  /** Listen on a unix socket in a fresh temporary folder instead of a loopback port. @default false */
  unixSocket?: boolean;
  /** The binary. @default "redis-server" (from PATH) */
  binary?: string;
}

/** A running (or stopped, restartable) redis-server. */
export interface RedisServer {
  /** `redis://127.0.0.1:PORT/0`, or the socket path for `unixSocket`. */
  url: string;
  /** The loopback port, 0 for a unix socket. */
  port: number;
  /** The socket path, when `unixSocket`. */
  socket?: string;
  /** Whether the server process is running. */
  readonly running: boolean;
  /** Kills the server (`SIGKILL` by default: nothing is saved anyway) and waits for it to exit. */
  stop(signal?: "SIGKILL" | "SIGTERM"): Promise<void>;
  /** Starts it again on the same address, with an empty dataset. */
  start(): Promise<void>;
}

const MISSING =
  "redis-server is not installed (or not on PATH): install it with `apt-get install -y redis-server` " +
  "(.ci/run does). The Redis tests run against a real server and never mock it.";

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function launch(
  binary: string,
  args: string[],
): Promise<{ child: ChildProcess; exited: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
    const exited = new Promise<void>((r) => child.on("exit", () => r()));
    let log = "";
    let done = false;
    const finish = (error?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.stdout!.removeAllListeners("data");
      child.stdout!.resume();
      child.stderr!.resume();
      if (error) {
        child.kill("SIGKILL");
        reject(error);
      } else resolve({ child, exited });
    };
    const timer = setTimeout(
      () => finish(new Error(`redis-server did not start in 10 s:\n${log}`)),
      10_000,
    );
    child.stdout!.on("data", (chunk: Uint8Array) => {
      log += new TextDecoder().decode(chunk);
      if (log.includes("Ready to accept connections")) finish();
    });
    child.on("error", (error: NodeJS.ErrnoException) => {
      finish(error.code === "ENOENT" ? new Error(MISSING) : error);
    });
    child.on("exit", (code) => finish(new Error(`redis-server exited (code ${code}):\n${log}`)));
  });
}

/**
 * Starts a redis-server for a test: persistence off (`--save '' --appendonly no`), loopback only.
 * @throws {Error} with a clear message when redis-server is not installed.
 */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const binary = options.binary ?? "redis-server";
  const base = [
    "--save",
    "",
    "--appendonly",
    "no",
    "--bind",
    "127.0.0.1",
    "--protected-mode",
    "no",
  ];
  let port = 0;
  let socket: string | undefined;
  let args: string[];
  if (options.unixSocket) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mft-redis-"));
    socket = path.join(dir, "redis.sock");
    args = [...base, "--port", "0", "--unixsocket", socket, "--unixsocketperm", "700"];
  } else {
    args = [];
  }
  let proc: { child: ChildProcess; exited: Promise<void> } | undefined;
  for (let attempt = 0; !proc; attempt++) {
    if (!options.unixSocket) {
      port = await freePort();
      args = [...base, "--port", String(port)];
    }
    try {
      proc = await launch(binary, args);
    } catch (error) {
      // Someone took the port between our check and redis binding it: try another.
      if (attempt >= 4 || !String(error).includes("Address already in use")) throw error;
    }
  }
  let current: { child: ChildProcess; exited: Promise<void> } | undefined = proc;
  const cleanup = () => current?.child.kill("SIGKILL");
  process.once("exit", cleanup);
  return {
    url: socket ?? `redis://127.0.0.1:${port}/0`,
    port,
    socket,
    get running() {
      return current !== undefined;
    },
    async stop(signal = "SIGKILL") {
      const p = current;
      current = undefined;
      if (!p) return;
      p.child.kill(signal);
      await p.exited;
    },
    async start() {
      if (current) return;
      if (socket) fs.rmSync(socket, { force: true });
      current = await launch(binary, args);
    },
  };
}
