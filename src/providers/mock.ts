/**
 * The built-in offline provider: answers in-process after a configurable latency, fails a
 * configurable fraction of requests, and needs no key and no network.
 * @module
 */
import { mulberry32 } from "../_prng.ts";
import { type Clock, delay, systemClock } from "../clock.ts";
import {
  geminiToChat,
  openAIBodyToChat,
  toChatCompletion,
  toGenerateContentResponse,
} from "../convert.ts";
import { ProviderError } from "../errors.ts";
import {
  type ChatRequest,
  contentText,
  type ProviderResponse,
  type RequestItem,
} from "../formats.ts";
import type { Provider, SendOptions } from "./provider.ts";

/** Options for {@linkcode createMockProvider}. */
export interface MockProviderOptions {
  /** Answer delay in ms. @default 20 */
  latencyMs?: number;
  /** Fraction of requests that fail with a retryable 500, in [0, 1]. @default 0 */
  failureRate?: number;
  /** Seed of the failure draw, so runs repeat. @default 1 */
  seed?: number;
  /** Model name reported. @default "mock-1" */
  model?: string;
  /** Time source for the latency. @default systemClock */
  clock?: Clock;
}

/** Requests per second when none is set: fast, it is local. */
export const MOCK_DEFAULT_RATE = 1000;

function chatOf(item: RequestItem): ChatRequest {
  if (item.format === "simple") return item.chat;
  if (item.format === "gemini-batch") return geminiToChat(item.request);
  return openAIBodyToChat(item.body);
}

/** Creates the in-process mock provider. */
export function createMockProvider(options: MockProviderOptions = {}): Provider {
  const { latencyMs = 20, failureRate = 0, seed = 1, model = "mock-1", clock = systemClock } =
    options;
  if (!(latencyMs >= 0) || !Number.isFinite(latencyMs)) {
    throw new RangeError(
      `Cannot mock as 'latencyMs' must be a finite number >= 0: current value is ${latencyMs}`,
    );
  }
  if (!(failureRate >= 0 && failureRate <= 1)) {
    throw new RangeError(
      `Cannot mock as 'failureRate' must be in [0, 1]: current value is ${failureRate}`,
    );
  }
  const random = mulberry32(seed);
  return {
    name: "mock",
    model,
    defaultRate: MOCK_DEFAULT_RATE,
    async send(item: RequestItem, { signal }: SendOptions = {}): Promise<ProviderResponse> {
      const fails = failureRate > 0 && random() < failureRate;
      await delay(latencyMs, { clock, signal });
      if (fails) {
        throw new ProviderError({
          status: 500,
          code: "mock_failure",
          message: "mock provider: planned failure",
          retryable: true,
        });
      }
      const chat = chatOf(item);
      const last = chat.messages.findLast((m) => m.role === "user");
      const prompt = last ? contentText(last.content) : "";
      const text = `mock answer: ${prompt.slice(0, 200)}`;
      const inputChars = chat.messages.reduce(
        (n, m) => n + contentText(m.content).length,
        chat.system?.length ?? 0,
      );
      const usage = {
        input_tokens: Math.ceil(inputChars / 4),
        output_tokens: Math.ceil(text.length / 4),
      };
      const body = item.format === "gemini-batch"
        ? toGenerateContentResponse(text, usage, model)
        : toChatCompletion(text, usage, model);
      return { status: 200, body, text, usage, provider: "mock", model, finishReason: "stop" };
    },
  };
}
