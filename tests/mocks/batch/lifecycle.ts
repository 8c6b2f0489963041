/**
 * The batch mock's state machine: the phase a batch is in at a time on the clock, and what
 * finishing it writes (results, errors, expiry).
 * @module
 */
import { geminiBody, GRPC, itemError, itemErrorMessage, openAiBody } from "./items.ts";
import { type Batch, type Json, nextId, type State } from "./state.ts";

/** A created batch, as the mock reports it. */
export interface MockBatchInfo {
  provider: "openai" | "gemini";
  id: string;
  /** 1-based creation order over both providers. */
  ordinal: number;
  /** OpenAI `metadata.mft_tag` or Gemini `display_name`. */
  tag: string | undefined;
  items: number;
  state: string;
}

// ---------------------------------------------------------------------------------------------
// The state machine

export type Phase =
  | "validating"
  | "in_progress"
  | "finalizing"
  | "completed"
  | "failed"
  | "expired"
  | "cancelling"
  | "cancelled";

/** A batch's phase at `t` and how many of its items are done. */
export function phaseAt(state: State, b: Batch, t: number): { phase: Phase; done: number } {
  const { validatingMs: V, runningMs: R, finalizingMs: F, cancellingMs: C } = state.o;
  const age = t - b.createdAt;
  const n = b.items.length;
  const progress = (at: number) => {
    if (b.fate === "stuck" || b.fate === "fail") return 0;
    const share = b.fate === "expire" ? state.o.expireAnswered : 1;
    const f = R === 0 ? 1 : Math.min(1, Math.max(0, (at - b.createdAt - V) / R));
    return Math.floor(n * share * f);
  };
  if (b.cancelAt !== undefined) {
    const done = progress(b.cancelAt);
    return { phase: t - b.cancelAt < C ? "cancelling" : "cancelled", done };
  }
  if (b.fate === "stuck" || age < V) return { phase: "validating", done: 0 };
  if (b.fate === "fail") return { phase: "failed", done: 0 };
  if (b.fate === "expire" && age >= V + R) return { phase: "expired", done: progress(t) };
  if (age < V + R) return { phase: "in_progress", done: progress(t) };
  if (age < V + R + F) return { phase: "finalizing", done: n };
  return { phase: "completed", done: n };
}

export const TERMINAL = new Set<Phase>(["completed", "failed", "expired", "cancelled"]);

/** Writes a finished batch's result files once. */
export function finish(state: State, b: Batch, phase: Phase, done: number): void {
  if (b.finished || !TERMINAL.has(phase)) return;
  b.finished = true;
  for (const [i, item] of b.items.entries()) {
    const key = `${b.provider}:${item.key}`;
    if (state.live.get(key) === b.id) state.live.delete(key);
    if (i < done) state.processed.set(key, (state.processed.get(key) ?? 0) + 1);
  }
  if (phase === "failed") return;
  if (b.provider === "openai") {
    const ok: string[] = [];
    const bad: string[] = [];
    for (const [i, item] of b.items.entries()) {
      const id = nextId(state, "");
      if (i >= done) {
        if (phase === "expired" && state.o.expiredUnanswered === "missing") continue;
        const code = phase === "expired" ? "batch_expired" : "batch_cancelled";
        bad.push(JSON.stringify({
          id: `batch_req_${id}`,
          custom_id: item.key,
          response: null,
          error: {
            code,
            message: phase === "expired"
              ? "This request could not be executed before the completion window expired."
              : "This request was cancelled before it ran.",
          },
        }));
        continue;
      }
      const status = itemError(state, item);
      if (status === 0) {
        ok.push(JSON.stringify({
          id: `batch_req_${id}`,
          custom_id: item.key,
          response: { status_code: 200, request_id: `req_${id}`, body: openAiBody(item, id) },
          error: null,
        }));
      } else {
        bad.push(JSON.stringify({
          id: `batch_req_${id}`,
          custom_id: item.key,
          response: {
            status_code: status,
            request_id: `req_${id}`,
            body: {
              error: {
                message: itemErrorMessage(item, status),
                type: status >= 500 ? "server_error" : "invalid_request_error",
                param: null,
                code: /\[\[mock:/.test(item.userText) ? null : "mock_item_error",
              },
            },
          },
          error: null,
        }));
      }
    }
    const file = (lines: string[], name: string) => {
      if (lines.length === 0) return null;
      const id = nextId(state, "file-");
      state.files.set(id, {
        id,
        filename: name,
        purpose: "batch_output",
        content: lines.join("\n") + "\n",
        createdUnix: Math.floor(Date.now() / 1000),
      });
      return id;
    };
    b.outputFileId = file(ok, `${b.id}_output.jsonl`);
    b.errorFileId = file(bad, `${b.id}_error.jsonl`);
  } else if (b.fileOutput) {
    const lines = geminiResponses(state, b, done).map((r) => {
      const { metadata, ...rest } = r as { metadata: { key: string } };
      return JSON.stringify({ key: metadata.key, ...rest });
    });
    const id = `files/batch-${nextId(state, "")}`;
    state.files.set(id, {
      id,
      filename: id,
      purpose: "batch_output",
      content: lines.join("\n") + (lines.length ? "\n" : ""),
      createdUnix: Math.floor(Date.now() / 1000),
    });
    b.outputFileId = id;
  }
}

export function geminiResponses(state: State, b: Batch, done: number): Json[] {
  const out: Json[] = [];
  for (const item of b.items.slice(0, done)) {
    const status = itemError(state, item);
    if (status === 0) {
      out.push({ response: geminiBody(item, nextId(state, "")), metadata: { key: item.key } });
    } else {
      const [code, name] = GRPC[status] ?? [2, "UNKNOWN"];
      out.push({
        error: { code, message: itemErrorMessage(item, status), status: name },
        metadata: { key: item.key },
      });
    }
  }
  return out;
}

export function register(state: State, b: Batch): void {
  b.ordinal = state.order.length + 1;
  if (b.fate === "fail") {
    // failed validation: nothing runs, so nothing counts as submitted
    state.batches.set(b.id, b);
    state.order.push(b);
    return;
  }
  if (state.o.stuck.includes(b.ordinal)) b.fate = "stuck";
  else if (state.o.expire.includes(b.ordinal)) b.fate = "expire";
  else if (state.o.fail[b.ordinal] !== undefined) {
    b.fate = "fail";
    b.failCode = state.o.fail[b.ordinal];
    b.failMessage = `mock: planned failure ${b.failCode}`;
  }
  state.batches.set(b.id, b);
  state.order.push(b);
  for (const item of b.items) {
    const key = `${b.provider}:${item.key}`;
    if (state.live.has(key) || state.processed.has(key)) state.resubmitted.add(key);
    state.live.set(key, b.id);
    state.submissions.set(key, (state.submissions.get(key) ?? 0) + 1);
  }
}

export function info(state: State, b: Batch): MockBatchInfo {
  return {
    provider: b.provider,
    id: b.id,
    ordinal: b.ordinal,
    tag: b.tag,
    items: b.items.length,
    state: phaseAt(state, b, state.o.now()).phase,
  };
}
