/**
 * Serves the mock batch API (`tests/mocks/mock_batch.ts`) from the command line: prints
 * `{"url":"http://127.0.0.1:PORT"}` and serves until SIGTERM/SIGINT. Flags: see that file.
 *
 *   bun scripts/start_mock_batch.ts [--expire 1,3] [--item-error-rate F] ...
 * @module
 */
import process from "node:process";
import { main } from "../tests/mocks/mock_batch.ts";

try {
  await main(process.argv.slice(2));
} catch (e) {
  console.error(`mock_batch: ${(e as Error).message}`);
  process.exit(2);
}
