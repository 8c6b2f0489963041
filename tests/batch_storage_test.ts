import { afterAll, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { createFileStorage, defaultDataDir, openServerStorage } from "../src/fs/batch_storage.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mft-batch-storage-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

test("createFileStorage() refuses a directory a running process holds, and takes over a dead one's", async () => {
  const dir = path.join(tmp, "locked");
  fs.mkdirSync(dir);
  const holder = Bun.spawn(["sleep", "30"]);
  try {
    fs.writeFileSync(path.join(dir, "server.lock"), `${holder.pid}\n`);
    expect(() => createFileStorage(dir)).toThrow(`in use by process ${holder.pid}`);
    const warnings: string[] = [];
    expect(
      openServerStorage(
        undefined,
        { XDG_DATA_HOME: path.join(tmp, "free") },
        (l) => warnings.push(l),
      ),
    )
      .toBeDefined(); // the default directory is another one: free
    expect(() => openServerStorage(dir, {}, () => {})).toThrow("in use");
    fs.mkdirSync(path.join(tmp, "xdg", "model-fine-tuner"), { recursive: true });
    fs.writeFileSync(path.join(tmp, "xdg", "model-fine-tuner", "server.lock"), `${holder.pid}\n`);
    expect(
      openServerStorage(
        undefined,
        { XDG_DATA_HOME: path.join(tmp, "xdg") },
        (l) => warnings.push(l),
      ),
    )
      .toBeUndefined();
    expect(warnings.at(-1)).toContain("no Batch API");
  } finally {
    holder.kill("SIGKILL");
    await holder.exited;
  }
  // The holder died without removing its lock (kill -9): the next server takes the directory.
  const storage = createFileStorage(dir);
  expect(fs.readFileSync(path.join(dir, "server.lock"), "utf8").trim()).toBe(String(process.pid));
  expect(storage.location).toBe(dir);
});

test("defaultDataDir() follows XDG_DATA_HOME, then HOME", () => {
  expect(defaultDataDir({ XDG_DATA_HOME: "/x", HOME: "/h" })).toBe("/x/model-fine-tuner");
  expect(defaultDataDir({ HOME: "/h" })).toBe("/h/.local/share/model-fine-tuner");
});

test("file storage: appends in order, cuts a torn last line, streams and replaces atomically", async () => {
  const storage = createFileStorage(path.join(tmp, "files"));
  const out = await storage.openAppend("p.jsonl");
  await Promise.all(Array.from({ length: 100 }, (_, i) => out.append(`{"n":${i}}\n`)));
  await out.close();
  const text = () => fs.readFileSync(path.join(storage.location, "p.jsonl"), "utf8");
  expect(text().trim().split("\n").map((l) => JSON.parse(l).n)).toEqual(
    Array.from({ length: 100 }, (_, i) => i),
  );
  fs.appendFileSync(path.join(storage.location, "p.jsonl"), '{"n":10');
  expect(await storage.repairTail("p.jsonl")).toBe(true);
  expect(await storage.repairTail("p.jsonl")).toBe(false);
  expect(text().endsWith('{"n":99}\n')).toBe(true);
  expect(await new Response(await storage.readStream("p.jsonl")).text()).toBe(text());
  await storage.writeAtomic("s.json", "one");
  await storage.writeAtomic("s.json", "two");
  expect(await storage.readText("s.json")).toBe("two");
  expect((await storage.list()).filter((n) => n.endsWith(".tmp"))).toEqual([]);
  await expect(storage.readStream("missing.jsonl")).rejects.toThrow("no file");
  const big = new Response("x".repeat(1000)).body!;
  await expect(storage.writeStream("big.upload", big, 999)).rejects.toThrow("limit of 999");
  expect(await storage.size("big.upload")).toBeUndefined();
});
