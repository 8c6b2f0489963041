/**
 * The errors file of a run: its default name, derived from the output's (so two jobs in one
 * folder never share one), and what `--resume` does with the failures already in it. A runtime
 * edge: plain `node:` files.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { sameFile } from "../fs/files.ts";
import { outputId } from "../formats.ts";
import { IdSet } from "../id_set.ts";
import { repairJsonl } from "./resume_files.ts";

/**
 * The errors file that goes with `output`: `out.jsonl` → `out.errors.jsonl`, `results` →
 * `results.errors.jsonl`; `errors.jsonl` in the working directory for stdout (`-`).
 * @example
 * ```ts
 * import { defaultErrorsFile } from "./errors_file.ts";
 * defaultErrorsFile("out/run1.jsonl"); // "out/run1.errors.jsonl"
 * ```
 */
export function defaultErrorsFile(output: string): string {
  if (output === "-") return "errors.jsonl";
  const dir = path.dirname(output);
  const base = path.basename(output).replace(/\.jsonl$/i, "");
  return path.join(dir, `${base}.errors.jsonl`);
}

/**
 * When the input is the errors file (the retry workflow: `run errors.jsonl`), moves it aside to
 * `<errors>.retry-<time>` before the errors file is rewritten, so that nothing is read from a
 * file being written and nothing is lost on a crash.
 * @returns The moved file and its lines; undefined when the input is another file (or stdin).
 */
export async function moveAsideIfErrorsFile(
  input: string,
  o: {
    errorsFile: string;
    /** The input's lines, already opened: cancelled when the file moves. */
    lines: ReadableStream<string>;
    readLines: (file: string) => ReadableStream<string>;
    log: (text: string) => void;
  },
): Promise<{ file: string; lines: ReadableStream<string> } | undefined> {
  if (input === "-" || !sameFile(input, o.errorsFile)) return undefined;
  const file = `${o.errorsFile}.retry-${Date.now()}`;
  await o.lines.cancel();
  fs.renameSync(input, file);
  o.log(`input is the errors file: reading it from ${file}\n`);
  return { file, lines: o.readLines(file) };
}

/** The key an error line is known by: its id, else (a line with none) its input line number. */
function keyOf(id: string | undefined, line: unknown): string | undefined {
  if (id !== undefined) return id;
  return typeof line === "number" ? `\u0000line ${line}` : undefined;
}

/** The key of an errors-file line; null for a line that is not JSON (torn by a crash). */
function keyOfRecord(text: string): string | undefined | null {
  try {
    const record = JSON.parse(text);
    return keyOf(outputId(record), record?.error?.line ?? record?.line);
  } catch {
    return null;
  }
}

/** Failures of earlier runs, kept through a `--resume` unless this run writes their line again. */
export interface ErrorsCarryOver {
  /** Notes that this run wrote a record (answer or error) for `id` (or, without one, `line`). */
  written(id: string | undefined, line: number): void;
  /**
   * Appends to the errors file every earlier failure this run did not write again and whose id
   * is not `answered`, then removes the set-aside file. Returns how many were kept.
   */
  finish(answered?: { has(id: string): boolean }): Promise<number>;
}

/**
 * Sets the errors file of earlier runs aside as `<errors>.prev`, for a `--resume` that writes a
 * fresh errors file. What `finish()` copies back is every failure not re-run, so nothing is
 * truncated away: a run that stops early keeps the failures it did not reach. A `.prev` left by a
 * run that crashed still holds failures not copied back: the errors that run wrote are added to
 * it, and nothing is lost either.
 * @returns undefined when there is no earlier errors file.
 */
export function carryOverErrors(
  errorsFile: string,
  readLines: (file: string) => AsyncIterable<string>,
  log: (line: string) => void = () => {},
): Promise<ErrorsCarryOver | undefined> {
  return (async () => {
    const prev = `${errorsFile}.prev`;
    // Lines a crash or a full disk cut short are removed first.
    await repairJsonl(errorsFile, log);
    await repairJsonl(prev, log);
    const hasPrev = fs.existsSync(prev);
    if (fs.existsSync(errorsFile)) {
      if (hasPrev) {
        // A crashed resume: both files hold failures; keep them together in `.prev`.
        fs.appendFileSync(prev, fs.readFileSync(errorsFile));
        fs.rmSync(errorsFile);
      } else {
        fs.renameSync(errorsFile, prev);
      }
    } else if (!hasPrev) {
      return undefined;
    }
    const pending = new IdSet();
    for await (const line of readLines(prev)) {
      const key = line.trim() === "" ? undefined : keyOfRecord(line);
      if (typeof key === "string") pending.add(key);
    }
    if (pending.size > 0) log(`resume: ${pending.size} earlier failures set aside in ${prev}`);
    const rewritten = new IdSet();
    return {
      written(id, line) {
        const key = keyOf(id, line);
        if (key !== undefined && pending.has(key)) rewritten.add(key);
      },
      async finish(answered) {
        let kept = 0;
        const copied = new IdSet();
        const fd = fs.openSync(errorsFile, "a");
        try {
          for await (const line of readLines(prev)) {
            if (line.trim() === "") continue;
            const key = keyOfRecord(line);
            if (key === null) continue; // torn: not a record
            // A line with no id and no line number can not be matched: keep it.
            if (key !== undefined) {
              if (rewritten.has(key) || answered?.has(key) || copied.add(key) !== 0) continue;
            }
            fs.writeSync(fd, line + "\n");
            kept++;
          }
          fs.fsyncSync(fd);
        } finally {
          fs.closeSync(fd);
        }
        fs.rmSync(prev);
        return kept;
      },
    };
  })();
}
