// Tests of what run and batch mode share for --resume (src/cli/resume_files.ts) and for the
// retry workflow (moveAsideIfErrorsFile in src/cli/errors_file.ts), on real files under /tmp.
import { afterEach, beforeEach, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { moveAsideIfErrorsFile } from "../src/cli/errors_file.ts";
import { recordIds, resumeCommand } from "../src/cli/resume_files.ts";
import { fileLines } from "../src/fs/files.ts";

let dir: string;
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "i13-resume-files-"))));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test("resumeCommand() repeats run's arguments with --resume, without --overwrite, quoted", () => {
  expect(resumeCommand(["in.jsonl", "-o", "my out.jsonl", "--overwrite"], "in.jsonl")).toBe(
    "model-fine-tuner run in.jsonl -o 'my out.jsonl' --resume",
  );
  expect(resumeCommand(["e.jsonl", "--resume"], "e.jsonl", "e.jsonl.retry-1")).toBe(
    "model-fine-tuner run e.jsonl.retry-1 --resume",
  );
});

test("recordIds() skips error records of the given codes and repairs a torn last line", async () => {
  const file = path.join(dir, "errors.jsonl");
  fs.writeFileSync(
    file,
    [
      JSON.stringify({ id: "a", error: { code: "timeout" } }),
      JSON.stringify({ id: "b", error: { code: "invalid_line" } }),
      JSON.stringify({ error: { code: "timeout", line: 3 } }),
      '{"id":"c","err',
    ].join("\n"),
  );
  const logged: string[] = [];
  const ids = await recordIds(file, (l) => logged.push(l), {
    skipCodes: new Set(["invalid_line"]),
  });
  expect(ids.has("a")).toBe(true);
  expect(ids.has("b")).toBe(false);
  expect(ids.has("c")).toBe(false);
  expect(ids.size).toBe(1);
  expect(logged).toEqual([`resume: removed an unfinished last line from ${file}`]);
  expect(fs.readFileSync(file, "utf8").endsWith("\n")).toBe(true);
});

/** An input's lines that records whether it was cancelled. */
function inputLines(): { lines: ReadableStream<string>; cancelled: () => boolean } {
  let cancelled = false;
  const lines = new ReadableStream<string>({
    pull: () => {},
    cancel: () => void (cancelled = true),
  });
  return { lines, cancelled: () => cancelled };
}

test("moveAsideIfErrorsFile() moves the errors file aside and reads it from there", async () => {
  const errors = path.join(dir, "out.errors.jsonl");
  fs.writeFileSync(errors, '{"id":"x","prompt":"p"}\n');
  const logged: string[] = [];
  const other = path.join(dir, "in.jsonl");
  fs.writeFileSync(other, "{}\n");
  const kept = inputLines();
  expect(
    await moveAsideIfErrorsFile(other, {
      errorsFile: errors,
      lines: kept.lines,
      readLines: fileLines,
      log: (t) => logged.push(t),
    }),
  ).toBeUndefined();
  expect(kept.cancelled()).toBe(false);
  const input = inputLines();
  const moved = await moveAsideIfErrorsFile(errors, {
    errorsFile: errors,
    lines: input.lines,
    readLines: fileLines,
    log: (t) => logged.push(t),
  });
  expect(input.cancelled()).toBe(true);
  expect(moved?.file).toStartWith(`${errors}.retry-`);
  expect(fs.existsSync(errors)).toBe(false);
  const read: string[] = [];
  for await (const line of moved!.lines) read.push(line);
  expect(read).toEqual(['{"id":"x","prompt":"p"}']);
  expect(logged).toEqual([`input is the errors file: reading it from ${moved!.file}\n`]);
});
