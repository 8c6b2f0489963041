/**
 * Preloaded by `bun test` (bunfig.toml): every server a test starts without `--data-dir` keeps its
 * Batch API data in a directory of this test run, never in the user's `~/.local/share`.
 * @module
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { afterAll } from "bun:test";

const dataHome = fs.mkdtempSync(path.join(os.tmpdir(), "mft-test-data-"));
process.env.XDG_DATA_HOME = dataHome;
afterAll(() => fs.rmSync(dataHome, { recursive: true, force: true }));
