/**
 * Files as the command line (`cli.ts`, `src/cli/batch_job.ts`) reads and checks them. A runtime edge:
 * plain `node:` file handles, which Bun, Deno and Node all provide.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { TextLineStream } from "../text_line_stream.ts";

/** A file read as a byte stream with a plain file handle (portable across Bun, Deno, Node). */
export function fileBytes(file: string): ReadableStream<Uint8Array> {
  let handle: fs.promises.FileHandle | undefined;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      handle ??= await fs.promises.open(file, "r");
      const buffer = new Uint8Array(256 * 1024);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) {
        await handle.close();
        controller.close();
      } else {
        controller.enqueue(buffer.subarray(0, bytesRead));
      }
    },
    async cancel() {
      await handle?.close();
    },
  });
}

/** The lines of a byte stream of UTF-8 text. */
export function linesOf(bytes: ReadableStream<Uint8Array>): ReadableStream<string> {
  return bytes.pipeThrough(new TextDecoderStream()).pipeThrough(new TextLineStream());
}

/** The lines of a file, streamed. */
export function fileLines(file: string): ReadableStream<string> {
  return linesOf(fileBytes(file));
}

/**
 * Cuts a last line that a crash left unfinished (no newline) from an existing file, so that
 * appending starts on a clean line. Returns true if it cut anything.
 */
export function cutUnfinishedLastLine(file: string): boolean {
  const size = fs.statSync(file).size;
  if (size === 0) return false;
  const fd = fs.openSync(file, "r+");
  try {
    const tail = new Uint8Array(Math.min(size, 64 * 1024));
    let end = size;
    let keep = -1;
    while (end > 0 && keep < 0) {
      const start = Math.max(0, end - tail.length);
      const n = fs.readSync(fd, tail, 0, end - start, start);
      const at = tail.subarray(0, n).lastIndexOf(10);
      if (at >= 0) keep = start + at + 1;
      end = start;
    }
    if (keep < 0) keep = 0;
    if (keep === size) return false;
    fs.ftruncateSync(fd, keep);
    return true;
  } finally {
    fs.closeSync(fd);
  }
}

/** Whether two paths name the same file (the same path, or the same inode through links). */
export function sameFile(a: string, b: string): boolean {
  if (path.resolve(a) === path.resolve(b)) return true;
  try {
    const sa = fs.statSync(a);
    const sb = fs.statSync(b);
    return sa.ino === sb.ino && sa.dev === sb.dev;
  } catch {
    return false;
  }
}

/** A path or argument quoted for a POSIX shell, for the commands the CLI prints (resume hints). */
export function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}
