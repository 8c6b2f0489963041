/**
 * Listening on a socket with the runtime's own server, for `serve` and the mocks the tests start:
 * `Bun.serve`, `Deno.serve`, or `@hono/node-server` on Node (imported only there).
 * @module
 */
import { importAtRuntime } from "./import_at_runtime.ts";

/** A server listening on a socket. */
export interface RunningServer {
  /** `http://host:port`, with the port actually bound. */
  url: string;
  hostname: string;
  port: number;
  runtime: "bun" | "deno" | "node";
  /**
   * Stops listening. Graceful by default: resolves once open responses have ended. `force`
   * also drops open connections (Bun, Node) or stops waiting for them (Deno).
   */
  close(options?: { force?: boolean }): Promise<void>;
}

/** Options for {@linkcode startServer}. */
export interface StartServerOptions {
  /** Interface to listen on. @default "127.0.0.1" */
  hostname?: string;
  /** TCP port; 0 picks a free one. @default 8787 */
  port?: number;
}

function hostForUrl(hostname: string): string {
  return hostname.includes(":") && !hostname.startsWith("[") ? `[${hostname}]` : hostname;
}

/**
 * Listens on `hostname:port` with the runtime's own server: `Bun.serve` (idle timeout off, so
 * long quiet streams are not cut), `Deno.serve`, or `@hono/node-server` on Node (request
 * timeout off, so a body read at the run's pace is not cut).
 * @param fetch The handler, e.g. `app.fetch`.
 * @throws when the address can not be bound.
 */
export async function startServer(
  fetch: (request: Request) => Response | Promise<Response>,
  options: StartServerOptions = {},
): Promise<RunningServer> {
  const hostname = options.hostname ?? "127.0.0.1";
  const port = options.port ?? 8787;
  const done = (
    runtime: RunningServer["runtime"],
    bound: number,
    close: RunningServer["close"],
  ): RunningServer => ({
    url: `http://${hostForUrl(hostname)}:${bound}`,
    hostname,
    port: bound,
    runtime,
    close,
  });
  if (typeof Bun !== "undefined") {
    const server = Bun.serve({
      hostname,
      port,
      idleTimeout: 0,
      fetch: (request) => fetch(request),
    });
    return done("bun", server.port!, async ({ force = false } = {}) => {
      await server.stop(force);
    });
  }
  if (typeof Deno !== "undefined") {
    const server = Deno.serve({ hostname, port, onListen() {} }, (request) => fetch(request));
    return done("deno", server.addr.port, async ({ force = false } = {}) => {
      const shutdown = server.shutdown();
      if (!force) await shutdown;
    });
  }
  const { serve } = await importAtRuntime<typeof import("@hono/node-server")>("@hono/node-server");
  return await new Promise<RunningServer>((resolve, reject) => {
    const server = serve(
      { fetch: (request) => fetch(request), hostname, port, serverOptions: { requestTimeout: 0 } },
      (info) => {
        server.off("error", reject);
        resolve(done("node", info.port, ({ force = false } = {}) =>
          new Promise<void>((closed) => {
            server.close(() => closed());
            const s = server as {
              closeAllConnections?: () => void;
              closeIdleConnections?: () => void;
            };
            if (force) s.closeAllConnections?.();
            else s.closeIdleConnections?.();
          })));
      },
    );
    server.once("error", reject);
  });
}
