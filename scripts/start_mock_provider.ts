/**
 * Serves the mock provider (`tests/mocks/mock_provider.ts`) from the command line: prints
 * `{"url":"http://127.0.0.1:PORT"}` and serves until SIGTERM/SIGINT. Flags: see that file.
 *
 *   bun scripts/start_mock_provider.ts [--port N] [--latency MS] [--failure-rate F] ...
 * @module
 */
import process from "node:process";
import { main } from "../tests/mocks/mock_provider.ts";

try {
  await main(process.argv.slice(2));
} catch (e) {
  console.error(`mock_provider: ${(e as Error).message}`);
  process.exit(2);
}
