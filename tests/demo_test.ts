/**
 * `npm run demo` (scripts/demo.ts), small: it answers every prompt, prints both times and the
 * report's path, and the report it wrote is there.
 * @module
 */
import { expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { finish, readJsonl, ROOT } from "./_cli.ts";

test("the demo answers every prompt, prints both times and writes the report", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mft-demo-"));
  try {
    const args = ["--prompts", "30", "--rate", "30", "--latency", "1200", "--out", dir];
    const r = await finish(
      Bun.spawn([process.execPath, path.join(ROOT, "scripts/demo.ts"), ...args], {
        cwd: dir,
        stdout: "pipe",
        stderr: "pipe",
      }),
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/rate-limited fire-and-forget: +\d+\.\d s/);
    expect(r.stdout).toMatch(/semaphore of 30 \(p-limit\): +\d+\.\d s/);
    expect(readJsonl(path.join(dir, "output.jsonl")).length).toBe(30);
    const report = /report: (.+)\n/.exec(r.stdout)![1];
    const html = fs.readFileSync(path.resolve(dir, report), "utf8");
    expect(html).toContain('<td data-k="ok">30</td>');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);
