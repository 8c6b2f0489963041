/**
 * Starts a throwaway `redis-server` (`tests/redis_test_server.ts`) from the command line: prints
 * `{"url":"redis://127.0.0.1:PORT/0"}` (with `--unix`: `{"url":"/tmp/…/redis.sock"}`) and serves
 * until SIGTERM/SIGINT.
 *
 *   bun scripts/start_redis.ts [--unix]
 * @module
 */
import process from "node:process";
import { startRedisServer } from "../tests/redis_test_server.ts";

const server = await startRedisServer({ unixSocket: process.argv.includes("--unix") });
console.log(JSON.stringify({ url: server.url }));
const shutdown = async () => {
  await server.stop("SIGTERM");
  process.exit(0);
};
process.once("SIGTERM", shutdown);
process.once("SIGINT", shutdown);
