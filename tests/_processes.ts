/**
 * Helpers for the process-lifecycle tests: raw HTTP over a socket (to send the `Host`, `Origin`
 * and `Content-Length` a browser or an attacker would), waiting for a child's output,
 * checking whether a pid or a port is still alive, and running a script under Deno or Bun.
 * @module
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import process from "node:process";

/** What came back to a raw HTTP request. */
export interface RawResponse {
  status: number;
  headers: string;
  body: string;
}

/**
 * Sends `head` (request line and headers, without the blank line) and `body` to `url`'s host
 * and port over a plain socket, with `Connection: close`, and reads the whole answer.
 */
export function rawHttp(url: string, head: string, body = ""): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    socket.on("connect", () => {
      socket.write(`${head.trimEnd()}\r\nConnection: close\r\n\r\n${body}`);
    });
    socket.on("data", (chunk) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("close", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const split = text.indexOf("\r\n\r\n");
      const headers = text.slice(0, split);
      resolve({
        status: Number(/^HTTP\/1\.\d (\d{3})/.exec(headers)?.[1] ?? 0),
        headers,
        body: text.slice(split + 4),
      });
    });
  });
}

/** Reads a stream, calling `onText` with all the text so far after each chunk. */
export function watchText(
  stream: ReadableStream<Uint8Array>,
  onText: (text: string) => void,
): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  return (async () => {
    for await (const chunk of stream) {
      text += decoder.decode(chunk, { stream: true });
      onText(text);
    }
    return text;
  })();
}

/** Resolves with the first value `check` gives (polled every 20 ms), or rejects after `ms`. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false,
  ms = 15_000,
): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    await Bun.sleep(20);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/** True while a process with this pid exists (zombies count as gone). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** The pids of the children of `pid` (from /proc). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** True if something accepts connections on 127.0.0.1:`port`. */
export function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.on("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

/** What {@linkcode runScript} saw of its child. */
export interface ScriptResult {
  stdout: string;
  stderr: string;
  code: number;
}

/**
 * Runs `script` (TypeScript; it may import the project's files by absolute path) in a child
 * under the npm-installed Deno (`deno eval`) or Bun (`bun -e`), and waits for it. The child gets
 * this process's environment, no update check and no colour, then `env` (a name set to
 * undefined is left out). It is killed after `timeoutMs`, so a child that would never exit
 * fails the test instead of hanging it.
 */
export async function runScript(
  runtime: "deno" | "bun",
  script: string,
  options: { env?: Record<string, string | undefined>; timeoutMs?: number } = {},
): Promise<ScriptResult> {
  const bin = path.resolve(import.meta.dir, "..", "node_modules", ".bin", runtime);
  const merged = { ...process.env, DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1", ...options.env };
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(merged)) if (v !== undefined) env[k] = v;
  const child = Bun.spawn(runtime === "deno" ? [bin, "eval", script] : [bin, "-e", script], {
    env,
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => child.kill(), options.timeoutMs ?? 20_000);
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  clearTimeout(timer);
  return { stdout, stderr, code };
}
