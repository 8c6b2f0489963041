// The core under src/ runs on any runtime with web globals (Bun, Deno, Node, Workers): every
// runtime-specific API lives in the edge folders. This reads each core file and lists what breaks
// that rule; README "Layout" says which folder a change belongs in.
import { expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";

const SRC = path.join(import.meta.dir, "..", "src");

/** The runtime edges under src/: these may use `node:` built-ins, `Deno`, `Bun`, ioredis. */
const EDGE_FOLDERS = ["adapter", "cli", "fs", "redis"];

/** Every .ts file under `dir`, as paths relative to src/. */
function tsFiles(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => f.endsWith(".ts"))
    .map((f) => path.relative(SRC, path.join(dir, f)));
}

function isEdge(file: string): boolean {
  return EDGE_FOLDERS.includes(file.split(path.sep)[0]);
}

/**
 * The source without comments, so that docs may name what the code must not use. Block comments
 * go first (their line breaks stay, so line numbers are the file's); a line comment is `//` at the start of a line or after whitespace (not `https://`).
 */
function code(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, "")).replace(
    /(^|\s)\/\/.*$/gm,
    "$1",
  );
}

const RULES: { name: string; pattern: RegExp }[] = [
  { name: "node:/bun:/npm: import", pattern: /\b(?:from|import)\s*\(?\s*["'](?:node|bun|npm):/ },
  { name: "require()", pattern: /(?<![\w.$])require\s*\(/ },
  { name: "Bun/Deno/process global", pattern: /(?<![\w.$])(?:Bun|Deno|process)\s*\??\./ },
  {
    name: "runtime global via globalThis",
    pattern: /globalThis\s*(?:as\s[^)]*\))?\.\s*(?:Bun|Deno|process)\b/,
  },
  { name: "ioredis", pattern: /["']ioredis["']/ },
  {
    name: "import from an edge folder",
    pattern: /\b(?:from|import)\s*\(?\s*["'][^"']*\/(?:adapter|cli|fs|redis)\/[^"']*["']/,
  },
];

/** Each line of `source` that uses a runtime-specific API, as "line N: rule: text". */
function runtimeApiUses(source: string): string[] {
  const found: string[] = [];
  code(source).split("\n").forEach((line, i) => {
    for (const rule of RULES) {
      if (rule.pattern.test(line)) found.push(`line ${i + 1}: ${rule.name}: ${line.trim()}`);
    }
  });
  return found;
}

test("runtimeApiUses() finds each kind of runtime-specific API, and not in comments", () => {
  const bad = [
    'import * as fs from "node:fs";',
    "import process from 'node:process';",
    'const { spawn } = await import("node:child_process");',
    'import { Database } from "bun:sqlite";',
    'import chalk from "npm:chalk";',
    'const os = require("os");',
    "Bun.sleep(5);",
    "const env = Deno.env.get('X');",
    "if (process.env.X) {}",
    "const d = (globalThis as { Deno?: typeof Deno }).Deno;",
    'import Redis from "ioredis";',
    'import { fileLines } from "../fs/files.ts";',
    'export { acquireOutputLock } from "./cli/output_lock.ts";',
  ];
  for (const line of bad) expect(runtimeApiUses(line)).not.toEqual([]);
  // The line numbers are the file's, comments included.
  expect(runtimeApiUses("/**\n * x\n */\nprocess.exit(1);")[0]).toStartWith("line 4:");

  const fine = [
    "// the edge wraps a client such as ioredis, and reads process.env",
    "/** `Deno.createHttpClient` caps HTTP/2; see `node:http`. */",
    'const url = "https://example.com/path"; // Bun.serve',
    "const subprocess = x.process.y; myBun.z = 1;",
    'import { delay } from "./delay.ts";',
    'import { Hono } from "hono";',
  ];
  for (const line of fine) expect(runtimeApiUses(line)).toEqual([]);
});

test("the core under src/ (outside the edge folders) uses no runtime-specific API", () => {
  const core = tsFiles(SRC).filter((f) => !isEdge(f));
  // The rule must have something to check: the scheduler, the run, the providers, the server app.
  for (const f of ["scheduler.ts", "run.ts", "providers/provider.ts", "server/app.ts"]) {
    expect(core).toContain(f);
  }
  const violations: Record<string, string[]> = {};
  for (const f of core) {
    const uses = runtimeApiUses(fs.readFileSync(path.join(SRC, f), "utf8"));
    if (uses.length > 0) violations[f] = uses;
  }
  expect(violations).toEqual({});
});

test("the edge folders exist and hold the runtime code (the list above is not stale)", () => {
  for (const folder of EDGE_FOLDERS) {
    const files = tsFiles(path.join(SRC, folder));
    expect(files.length).toBeGreaterThan(0);
  }
  // An edge folder with no runtime-specific code at all would not need to be an edge.
  const edgeUses = tsFiles(SRC).filter(isEdge).filter((f) =>
    runtimeApiUses(fs.readFileSync(path.join(SRC, f), "utf8")).length > 0
  );
  for (const folder of EDGE_FOLDERS) {
    expect(edgeUses.some((f) => f.startsWith(folder + path.sep))).toBe(true);
  }
});
