// Tests of src/cli/interrupt.ts: Ctrl-C in two stages, as run, batch mode and serve answer it.
import { expect, test } from "bun:test";
import { onTwoStageInterrupt, stopThenQuit } from "../src/cli/interrupt.ts";

/** An io whose Ctrl-C is pressed by hand. */
function handIo() {
  const handlers = new Set<() => void>();
  const said: string[] = [];
  return {
    said,
    press: () => [...handlers].forEach((h) => h()),
    registered: () => handlers.size,
    stderr: (text: string) => void said.push(text),
    onInterrupt(handler: () => void) {
      handlers.add(handler);
      return () => void handlers.delete(handler);
    },
  };
}

test("onTwoStageInterrupt() calls first once, then second on every later press", () => {
  const io = handIo();
  const calls: string[] = [];
  const remove = onTwoStageInterrupt(io, () => calls.push("first"), () => calls.push("second"));
  io.press();
  expect(calls).toEqual(["first"]);
  io.press();
  io.press();
  expect(calls).toEqual(["first", "second", "second"]);
  remove();
  expect(io.registered()).toBe(0);
  io.press();
  expect(calls.length).toBe(3);
});

test("stopThenQuit() aborts stop and says why, then aborts hard", () => {
  const io = handIo();
  const stop = new AbortController();
  const hard = new AbortController();
  let inFlight = 3;
  stopThenQuit(io, { stop, hard, message: () => `waiting for ${inFlight}\n` });
  inFlight = 2; // the message is built at the press, not at registration
  io.press();
  expect(stop.signal.aborted).toBe(true);
  expect((stop.signal.reason as DOMException).name).toBe("AbortError");
  expect(hard.signal.aborted).toBe(false);
  expect(io.said).toEqual(["waiting for 2\n"]);
  io.press();
  expect(hard.signal.aborted).toBe(true);
  expect((hard.signal.reason as DOMException).message).toBe("interrupted twice");
});
