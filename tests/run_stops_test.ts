/**
 * runRealtime() and the provider's stops, with a scripted provider: a stop on the last answers
 * after the whole input was read, the first request sent alone, a misconfigured run stopped on
 * its first answer, answers without text counted.
 * @module
 */
import { expect, test } from "bun:test";
import { delay } from "../src/clock.ts";
import { type FailureInfo, ProviderError } from "../src/errors.ts";
import type { ProviderResponse, RequestItem } from "../src/formats.ts";
import type { Provider } from "../src/providers/provider.ts";
import { runRealtime, type RunRecord } from "../src/run.ts";
import { FakeClock } from "./_fake_clock.ts";

/** A provider that answers each item with `answer(item)` after `ms`, counting what it saw. */
function scripted(answer: (item: RequestItem) => FailureInfo | "ok" | "length", ms = 5) {
  const seen = { sent: 0, open: 0, mostOpen: 0, events: [] as string[] };
  const provider: Provider = {
    name: "scripted",
    model: "m",
    defaultRate: 1000,
    async send(item) {
      seen.sent++;
      seen.events.push("send");
      seen.open++;
      seen.mostOpen = Math.max(seen.mostOpen, seen.open);
      await new Promise((r) => setTimeout(r, ms));
      seen.open--;
      seen.events.push("answer");
      const a = answer(item);
      if (a === "ok" || a === "length") {
        const r: ProviderResponse = {
          status: 200,
          body: {},
          text: "t",
          usage: { input_tokens: 1, output_tokens: 1 },
          provider: "scripted",
          model: "m",
          finishReason: a === "ok" ? "stop" : "length",
        };
        return r;
      }
      throw new ProviderError(a);
    },
  };
  return { provider, seen };
}

const lines = (n: number) =>
  Array.from({ length: n }, (_, i) => JSON.stringify({ id: `i${i}`, prompt: `p${i}` }));

async function drain(results: ReadableStream<RunRecord>): Promise<RunRecord[]> {
  const out: RunRecord[] = [];
  for await (const r of results) out.push(r);
  return out;
}

const billing: FailureInfo = {
  status: 429,
  code: "insufficient_quota",
  message: "no credit",
  retryable: false,
  kind: "billing",
};

test("runRealtime() marks the run stopped when the provider's stop comes after the whole input was read", async () => {
  const { provider } = scripted((item) => (item.id === "i4" ? billing : "ok"));
  const run = runRealtime(ReadableStream.from(lines(5)), { provider, rate: 1000 });
  const records = await drain(run.results);
  const stats = await run.done;
  expect(stats.read).toBe(5); // every line was read before the stop came
  expect(stats.stopped).toBe(true);
  expect(stats.fatal?.kind).toBe("billing");
  expect(stats.unsent).toBe(1);
  expect(records.map((r) => r.id).sort()).toEqual(["i0", "i1", "i2", "i3"]);
});

test("runRealtime() sends the first request alone, then at the full rate", async () => {
  const { provider, seen } = scripted(() => "ok", 30);
  const run = runRealtime(ReadableStream.from(lines(40)), { provider, rate: 1000 });
  await drain(run.results);
  expect((await run.done).ok).toBe(40);
  expect(seen.events.slice(0, 2)).toEqual(["send", "answer"]);
  expect(seen.mostOpen).toBeGreaterThan(5);
  // With probe: false the first answer is not waited for either (the server's shared gate).
  const again = scripted(() => "ok", 30);
  const r2 = runRealtime(ReadableStream.from(lines(40)), {
    provider: again.provider,
    probe: false,
  });
  await drain(r2.results);
  expect(again.seen.events.slice(0, 2)).toEqual(["send", "send"]);
  expect(again.seen.mostOpen).toBeGreaterThan(5);
});

test("runRealtime() starts the rate's grid when the first answer opens it: no catch-up burst", async () => {
  // Rate 1000 and a first answer in 40 ms (under the scheduler's 100 ms idle allowance): the 40
  // slots that passed while the first request was out must not go out at once.
  const clock = new FakeClock(0);
  const sends: number[] = [];
  const provider: Provider = {
    name: "timed",
    model: "m",
    defaultRate: 1000,
    async send() {
      sends.push(clock.now());
      await delay(40, { clock });
      return {
        status: 200,
        body: {},
        text: "t",
        usage: { input_tokens: 1, output_tokens: 1 },
        provider: "timed",
        model: "m",
        finishReason: "stop",
      };
    },
  };
  const run = runRealtime(ReadableStream.from(lines(30)), { provider, rate: 1000, clock });
  const records = drain(run.results);
  while (sends.length < 30) await clock.advance(1);
  await clock.advance(100);
  expect((await records).length).toBe(30);
  // Sent alone at 0; the second when the answer came (40), then one per millisecond.
  expect(sends).toEqual([0, ...Array.from({ length: 29 }, (_, i) => 40 + i)]);
});

test("runRealtime() stops a misconfigured run on its first answer: one request sent, every line unsent", async () => {
  const notFound: FailureInfo = {
    status: 404,
    code: "model_not_found",
    message: "The model `x` does not exist",
    retryable: false,
    kind: "config",
  };
  const { provider, seen } = scripted(() => notFound);
  const run = runRealtime(ReadableStream.from(lines(500)), { provider, rate: 1000 });
  const records = await drain(run.results);
  const stats = await run.done;
  expect(seen.sent).toBe(1);
  expect(records).toEqual([]);
  expect(stats.stopped).toBe(true);
  expect(stats.fatal).toMatchObject({ kind: "config", code: "model_not_found" });
});

test("runRealtime() counts answers without text by reason and cut answers with text", async () => {
  const noText = (code: string, retryable = false): FailureInfo => ({
    status: 200,
    code,
    message: code,
    retryable,
    finishReason: code === "cut_off" ? "length" : "content_filter",
    response: { promptFeedback: { blockReason: "SAFETY" } },
  });
  const { provider } = scripted((item) =>
    item.id === "i1"
      ? noText("blocked")
      : item.id === "i2"
      ? noText("cut_off")
      : item.id === "i3"
      ? "length"
      : "ok"
  );
  const run = runRealtime(ReadableStream.from(lines(5)), { provider, rate: 1000 });
  const records = await drain(run.results);
  const stats = await run.done;
  expect(stats.noText).toEqual({ blocked: 1, cut_off: 1, refused: 0, empty_answer: 0 });
  expect(stats.truncated).toBe(1);
  const blocked = records.find((r) => r.id === "i1")!;
  expect(blocked.type).toBe("error");
  expect(blocked.record.error).toMatchObject({
    status: 200,
    code: "blocked",
    finish_reason: "content_filter",
    response: { promptFeedback: { blockReason: "SAFETY" } },
  });
  const cut = records.find((r) => r.id === "i3")!;
  expect(cut.record.finish_reason).toBe("length");
});

test("runRealtime() takes a config failure after a success as the line's own, also when a retry opened the rate first", async () => {
  let calls = 0;
  const notFound: FailureInfo = {
    status: 404,
    code: "model_not_found",
    message: "no such model",
    retryable: false,
    kind: "config",
  };
  const unavailable: FailureInfo = {
    status: 503,
    code: "unavailable",
    message: "busy",
    retryable: true,
  };
  const { provider } = scripted((item) => {
    calls++;
    if (calls === 1) return unavailable; // opens the rate without confirming anything
    return item.id === "i7" ? notFound : "ok";
  });
  const run = runRealtime(ReadableStream.from(lines(10)), {
    provider,
    rate: 1000,
    retry: { maxAttempts: 3, baseDelayMs: 1 },
  });
  const records = await drain(run.results);
  const stats = await run.done;
  expect(stats.stopped).toBe(false);
  expect(stats.fatal).toBe(undefined);
  expect(stats.ok).toBe(9);
  expect(records.find((r) => r.id === "i7")?.type).toBe("error");
});
