// Tests of src/clock.ts's real clock: its event-loop turns (`systemClock.nextTurn`), in this
// process and in Deno and Bun children, which must still exit by themselves afterwards.
import { expect, test } from "bun:test";
import * as path from "node:path";
import { systemClock } from "../src/clock.ts";
import { ROOT } from "./_cli.ts";
import { runScript } from "./_processes.ts";

const nextTurn = systemClock.nextTurn!;

test("systemClock.nextTurn runs callbacks in order, after the running code and its microtasks", async () => {
  const order: string[] = [];
  await new Promise<void>((resolve) => {
    nextTurn(() => order.push("turn 1"));
    nextTurn(() => {
      order.push("turn 2");
      // Asked for during a turn: it runs on a later one.
      nextTurn(() => {
        order.push("turn 3");
        resolve();
      });
      order.push("end of turn 2");
    });
    queueMicrotask(() => order.push("microtask"));
    order.push("sync");
  });
  expect(order).toEqual(["sync", "microtask", "turn 1", "turn 2", "end of turn 2", "turn 3"]);
});

test("systemClock.nextTurn lets I/O through: a socket's data arrives between turns", async () => {
  // A chain of turns must not starve the event loop the way a chain of microtasks does.
  const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("ok") });
  try {
    let answered = false;
    fetch(`http://127.0.0.1:${server.port}/`).then((r) => r.text()).then(() => (answered = true));
    let turns = 0;
    await new Promise<void>((resolve) => {
      const step = () => (answered || turns++ > 1_000_000 ? resolve() : nextTurn(step));
      step();
    });
    expect(answered).toBe(true);
  } finally {
    server.stop(true);
  }
});

for (const runtime of ["deno", "bun"] as const) {
  test(`a ${runtime} process that used systemClock.nextTurn still exits by itself`, async () => {
    const clock = JSON.stringify(path.join(ROOT, "src/clock.ts"));
    const script = `
      import { systemClock } from ${clock};
      for (let i = 0; i < 1000; i++) await new Promise((r) => systemClock.nextTurn(r));
      console.log("done");
    `;
    // Killed after a generous 20 s: an open MessagePort would keep it alive for ever.
    const { stdout, code } = await runScript(runtime, script, { timeoutMs: 20_000 });
    expect(stdout.trim()).toBe("done");
    expect(code).toBe(0);
  }, 30_000);
}
