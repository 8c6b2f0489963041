/**
 * Where the CLI reads and writes ({@linkcode CliIo}), and the real process behind it
 * ({@linkcode processIo}): stdin, stdout, stderr, the environment and the signals.
 * @module
 */
import process from "node:process";
import { Readable } from "node:stream";

/** Where the CLI reads and writes; swapped in tests. */
export interface CliIo {
  env: Record<string, string | undefined>;
  stderr: (text: string) => void;
  /** Writes to stdout; a returned promise means "wait before writing more" (backpressure). */
  stdout: (text: string) => void | Promise<void>;
  stdin: () => ReadableStream<Uint8Array>;
  isTTY: boolean;
  /** Registers the Ctrl-C (and SIGTERM) handler; returns a function that removes it. */
  onInterrupt: (handler: () => void) => () => void;
}

/** The real process: stdin, stdout, stderr, env and SIGINT. */
export function processIo(): CliIo {
  return {
    env: process.env,
    stderr: (text) => void process.stderr.write(text),
    stdout: (text) =>
      process.stdout.write(text)
        ? undefined
        : new Promise((resolve) => process.stdout.once("drain", () => resolve())),
    stdin: () => Readable.toWeb(process.stdin) as unknown as ReadableStream<Uint8Array>,
    isTTY: process.stderr.isTTY === true,
    onInterrupt(handler) {
      // SIGTERM (process managers, `kill`) stops as gracefully as Ctrl-C.
      process.on("SIGINT", handler);
      process.on("SIGTERM", handler);
      return () => {
        process.off("SIGINT", handler);
        process.off("SIGTERM", handler);
      };
    },
  };
}
