/**
 * What `--resume` reads back, repaired first: a crash or a full disk can leave a line cut short,
 * at the end of a file or (after a later append) in its middle. Such a line is not JSON and
 * holds no usable record: it is removed, and its item is sent again. A runtime edge: plain
 * `node:` files.
 * @module
 */
import * as fs from "node:fs";
import { cutUnfinishedLastLine, fileLines, shellQuote } from "../fs/files.ts";
import { outputId } from "../formats.ts";
import { IdSet } from "../id_set.ts";

function parses(line: string): boolean {
  try {
    JSON.parse(line);
    return true;
  } catch {
    return false;
  }
}

/**
 * Rewrites `file` without its lines that are not JSON (blank lines are kept), through a
 * temporary file renamed over it. Returns how many lines were removed.
 */
export async function dropTornLines(file: string): Promise<number> {
  const tmp = `${file}.repair`;
  const fd = fs.openSync(tmp, "w");
  let dropped = 0;
  try {
    for await (const line of fileLines(file)) {
      if (line.trim() !== "" && !parses(line)) {
        dropped++;
        continue;
      }
      fs.writeSync(fd, line + "\n");
    }
    fs.fsyncSync(fd);
  } catch (error) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw error;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
  return dropped;
}

/**
 * Repairs a JSONL file for appending: cuts an unfinished last line, removes torn lines inside.
 * @returns The lines removed (0 when the file was whole or does not exist).
 */
export async function repairJsonl(file: string, log: (line: string) => void): Promise<number> {
  if (!fs.existsSync(file)) return 0;
  let removed = 0;
  if (cutUnfinishedLastLine(file)) {
    removed++;
    log(`resume: removed an unfinished last line from ${file}`);
  }
  let torn = false;
  for await (const line of fileLines(file)) {
    if (line.trim() !== "" && !parses(line)) {
      torn = true;
      break;
    }
  }
  if (torn) {
    const n = await dropTornLines(file);
    removed += n;
    log(`resume: removed ${n} torn line${n === 1 ? "" : "s"} (not JSON) from ${file}`);
  }
  return removed;
}

/** Options of {@linkcode recordIds}. */
export interface RecordIdsOptions {
  /** The set to add to. @default a new one */
  ids?: IdSet;
  /** Leaves out error records of these codes (a rejected line marks no item done). */
  skipCodes?: ReadonlySet<string>;
  /** Adds the ids as answered (`RunOptions.seen`) and says which lines have none. */
  answered?: boolean;
}

/**
 * The ids of the records (answers or errors) in a JSONL file, after {@linkcode repairJsonl}:
 * appending then starts on a clean line, and the items of removed lines are sent again.
 */
export async function recordIds(
  file: string,
  log: (line: string) => void,
  options: RecordIdsOptions = {},
): Promise<IdSet> {
  const ids = options.ids ?? new IdSet();
  if (!fs.existsSync(file)) return ids;
  await repairJsonl(file, log);
  let lineNo = 0;
  for await (const line of fileLines(file)) {
    lineNo++;
    if (line.trim() === "") continue;
    const record = JSON.parse(line);
    const code = record?.error?.code;
    if (typeof code === "string" && options.skipCodes?.has(code)) continue;
    const id = outputId(record);
    if (id !== undefined) ids.add(id, lineNo, { answered: options.answered });
    else if (options.answered) log(`resume: ${file} line ${lineNo} has no id; ignored`);
  }
  return ids;
}

/**
 * The ids answered in an output file, for `--resume` ({@linkcode recordIds}). They are added as
 * answered, so the run can read its input into the same set (`RunOptions.seen`).
 */
export function answeredIds(
  file: string,
  log: (line: string) => void,
  ids: IdSet = new IdSet(),
): Promise<IdSet> {
  return recordIds(file, log, { ids, answered: true });
}

/**
 * The command that resumes a stopped run: `run`'s own arguments with `--resume` (and without
 * `--overwrite`), shell-quoted to be pasted.
 * @param input The input as given on the command line.
 * @param readFrom Where the input is now (the errors file set aside); @default input
 */
export function resumeCommand(argv: readonly string[], input: string, readFrom = input): string {
  return [
    "model-fine-tuner",
    "run",
    readFrom,
    ...argv.filter((a) => a !== input && a !== "--resume" && a !== "--overwrite"),
    "--resume",
  ].map(shellQuote).join(" ");
}
