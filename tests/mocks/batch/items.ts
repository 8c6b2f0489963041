/**
 * The batch mock's items: reading a prompt from either provider's request, drawing an item
 * error, and the answer bodies each provider writes.
 * @module
 */
import { draw, type Item, type Json, type State } from "./state.ts";

// ---------------------------------------------------------------------------------------------
// Items and answers

export const isObject = (x: unknown): x is Json =>
  typeof x === "object" && x !== null && !Array.isArray(x);

export function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content.map((p) => (isObject(p) && typeof p.text === "string" ? p.text : "")).join("\n");
}

/** The last user text and all prompt characters of an OpenAI body. */
export function openAiPrompt(body: Json): { userText: string; promptChars: number } {
  let userText = "";
  let promptChars = typeof body.instructions === "string" ? body.instructions.length : 0;
  if (Array.isArray(body.messages)) {
    for (const m of body.messages) {
      if (!isObject(m)) continue;
      const t = textOf(m.content);
      promptChars += t.length;
      if (m.role === "user") userText = t;
    }
  } else if (typeof body.input === "string") {
    userText = body.input;
    promptChars += userText.length;
  } else if (Array.isArray(body.input)) {
    for (const m of body.input) {
      if (!isObject(m)) continue;
      const t = textOf(m.content);
      promptChars += t.length;
      if (m.role === "user") userText = t;
    }
  } else if (typeof body.prompt === "string") {
    userText = body.prompt;
    promptChars += userText.length;
  }
  return { userText, promptChars };
}

export function geminiPrompt(request: Json): { userText: string; promptChars: number } {
  let userText = "";
  let promptChars = 0;
  const system = request.systemInstruction ?? request.system_instruction;
  if (isObject(system)) promptChars += textOf(system.parts).length;
  for (const c of Array.isArray(request.contents) ? request.contents : []) {
    if (!isObject(c)) continue;
    const t = textOf(c.parts);
    promptChars += t.length;
    if (c.role === undefined || c.role === "user") userText = t;
  }
  return { userText, promptChars };
}

/** The message of an item's planned error: a directive's reads as the realtime mock's does. */
export function itemErrorMessage(item: Item, status: number): string {
  return /\[\[mock:\d{3}\]\]/.test(item.userText)
    ? `mock: planned ${status} (attempt 1)`
    : `mock: planned item error ${status}`;
}

/** Status of an item's planned error, or 0 when it is answered. */
export function itemError(state: State, item: Item): number {
  const m = /\[\[mock:(\d{3})\]\]/.exec(item.userText);
  if (m) return Number(m[1]);
  return state.o.itemErrorRate > 0 && draw(state.o.seed, item.key) < state.o.itemErrorRate
    ? state.o.itemErrorStatus
    : 0;
}

export function answerText(item: Item): string {
  return `mock answer: ${item.userText.slice(0, 200)}`;
}

export function openAiBody(item: Item, id: string): Json {
  const text = answerText(item);
  const p = Math.ceil(item.promptChars / 4);
  const c = Math.ceil(text.length / 4);
  const created = Math.floor(Date.now() / 1000);
  if (item.kind === "/v1/responses") {
    return {
      id: `resp_${id}`,
      object: "response",
      created_at: created,
      status: "completed",
      model: item.model,
      output: [{
        type: "message",
        id: `msg_${id}`,
        status: "completed",
        role: "assistant",
        content: [{ type: "output_text", text, annotations: [] }],
      }],
      usage: { input_tokens: p, output_tokens: c, total_tokens: p + c },
    };
  }
  if (item.kind === "/v1/embeddings") {
    return {
      object: "list",
      data: [{ object: "embedding", index: 0, embedding: [0.1, 0.2, 0.3] }],
      model: item.model,
      usage: { prompt_tokens: p, total_tokens: p },
    };
  }
  if (item.kind === "/v1/completions") {
    return {
      id: `cmpl-${id}`,
      object: "text_completion",
      created,
      model: item.model,
      choices: [{ index: 0, text, finish_reason: "stop" }],
      usage: { prompt_tokens: p, completion_tokens: c, total_tokens: p + c },
    };
  }
  return {
    id: `chatcmpl-${id}`,
    object: "chat.completion",
    created,
    model: item.model,
    choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }],
    usage: { prompt_tokens: p, completion_tokens: c, total_tokens: p + c },
  };
}

export function geminiBody(item: Item, id: string): Json {
  const text = answerText(item);
  const p = Math.ceil(item.promptChars / 4);
  const c = Math.ceil(text.length / 4);
  return {
    candidates: [{ content: { role: "model", parts: [{ text }] }, finishReason: "STOP", index: 0 }],
    usageMetadata: { promptTokenCount: p, candidatesTokenCount: c, totalTokenCount: p + c },
    modelVersion: item.model,
    responseId: id,
  };
}

export const GRPC: Record<number, [number, string]> = {
  400: [3, "INVALID_ARGUMENT"],
  401: [16, "UNAUTHENTICATED"],
  403: [7, "PERMISSION_DENIED"],
  404: [5, "NOT_FOUND"],
  429: [8, "RESOURCE_EXHAUSTED"],
  500: [13, "INTERNAL"],
  503: [14, "UNAVAILABLE"],
};
