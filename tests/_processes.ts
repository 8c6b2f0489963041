/**
 * Helpers for the process-lifecycle tests: raw HTTP over a socket (to send the `Host`, `Origin`
 * and `Content-Length` a browser or an attacker would), waiting for a child's output, and
 * checking whether a pid or a port is still alive.
 * @module
 */
import * as fs from "node:fs";
import * as net from "node:net";
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
