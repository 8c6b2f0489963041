/**
 * `model-fine-tuner/server`: the HTTP server of `serve` as a Hono app (web globals only), for any
 * runtime that serves `fetch(request) => Response`.
 *
 * @example
 * ```ts
 * import { createApp } from "./mod.ts";
 * import { createMockProvider } from "../../mod.ts";
 * const app = createApp({ provider: createMockProvider(), rate: 10 });
 * const res = await app.request("/healthz");
 * ```
 * @module
 */
export {
  createApp,
  type RunSummaryLine,
  type RuntimeLimit,
  type RuntimeLimitReport,
  type ServerOptions,
} from "./app.ts";
export type { Appender, BatchStorage } from "./batch_api/storage.ts";
