/**
 * The package's entry points: package.json and deno.json export the same subpaths, each entry
 * exports only its public names, and the npm build of every subpath loads on Node and works
 * with the others (one copy of each class across them).
 * @module
 */
import { expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { ROOT } from "./_cli.ts";

const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
const deno = JSON.parse(fs.readFileSync(path.join(ROOT, "deno.json"), "utf8"));
const SUBPATHS = [".", "./server", "./batch", "./redis"];

test("package.json and deno.json export the same subpaths from the same files", () => {
  expect(Object.keys(deno.exports)).toEqual(SUBPATHS);
  for (const subpath of SUBPATHS) {
    const entry = pkg.exports[subpath];
    expect(entry.types).toBe(deno.exports[subpath]);
    expect(entry.bun).toBe(deno.exports[subpath]);
    expect(entry.default).toBe(
      "./dist/npm/" + deno.exports[subpath].slice(2).replace(/\.ts$/, ".js"),
    );
    expect(fs.existsSync(path.join(ROOT, entry.types))).toBe(true);
  }
});

test("the main entry leaves the internals to their modules", async () => {
  const names = Object.keys(await import("../mod.ts"));
  expect(names).toContain("runRealtime");
  expect(names).toContain("createProvider");
  for (const internal of ["isLoopback", "TextLineStream", "delay", "TOKEN_BURST_SHARE"]) {
    expect(names).not.toContain(internal);
  }
  expect(names.filter((n) => n.startsWith("classify"))).toEqual([]);
  expect(names).not.toContain("createApp"); // on ./server
  expect(names).not.toContain("runBatchJob"); // on ./batch
  expect(names).not.toContain("RedisScheduler"); // on ./redis
});

test("the npm build of every subpath loads on Node and shares one copy of each class", () => {
  const build = Bun.spawnSync(["sh", "scripts/compile", "--npm"], { cwd: ROOT });
  expect(build.exitCode).toBe(0);
  // Node resolves the package's own name through its "exports" (self-reference), with the
  // "default" condition: the dist/npm bundles, as an installed package would.
  const script = `
    const m = await import("model-fine-tuner");
    const { createApp } = await import("model-fine-tuner/server");
    const { isUnfinished, MemoryJobStore } = await import("model-fine-tuner/batch");
    const { parseQuotaUrl, RedisScheduler } = await import("model-fine-tuner/redis");
    const quota = new m.Quota({ rate: 10 });
    const app = createApp({ provider: m.createMockProvider(), rate: 10, quota });
    const res = await app.request("/v1/runs", { method: "POST", body: '{"id":"a","prompt":"hi"}\\n' });
    const lines = (await res.text()).trim().split("\\n").map((l) => JSON.parse(l));
    console.log(JSON.stringify({
      status: res.status,
      ok: lines[0].id,
      store: typeof new MemoryJobStore().load,
      unfinished: [isUnfinished({ state: "planning" }), isUnfinished({ state: "running" })],
      redis: [typeof RedisScheduler, parseQuotaUrl("redis://127.0.0.1:6379").display],
    }));`;
  const proc = Bun.spawnSync(["node", "--input-type=module", "-e", script], { cwd: ROOT });
  expect(proc.stderr.toString()).toBe("");
  const out = JSON.parse(proc.stdout.toString());
  expect(out.status).toBe(200);
  expect(out.ok).toBe("a");
  expect(out.store).toBe("function");
  expect(out.unfinished).toEqual([false, true]);
  expect(out.redis[0]).toBe("function");
  expect(out.redis[1]).toContain("127.0.0.1:6379");
  // Split, not one bundle per entry: a class defined once, whichever entries import it.
  const bundles = fs.readdirSync(path.join(ROOT, "dist", "npm"), { recursive: true })
    .map(String).filter((f) => f.endsWith(".js"));
  const defining = bundles.filter((f) =>
    /\bclass Quota\d* {/.test(fs.readFileSync(path.join(ROOT, "dist", "npm", f), "utf8"))
  );
  expect(defining.length).toBe(1);
});
