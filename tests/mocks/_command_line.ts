/**
 * What both mocks do when started from the command line (`scripts/start_mock_*.ts`): print
 * `{"url": …}` once listening, serve until SIGTERM or SIGINT, and turn a bad flag into one line on
 * stderr and exit 2.
 * @module
 */
import process from "node:process";

/** A started mock: where it listens and how it stops. */
export interface ServedMock {
  url: string;
  close(): Promise<void>;
}

/** Prints the mock's URL as one JSON line and closes it (then exits 0) on SIGTERM or SIGINT. */
export function serveUntilSignal(mock: ServedMock): void {
  console.log(JSON.stringify({ url: mock.url }));
  const shutdown = async () => {
    await mock.close();
    process.exit(0);
  };
  process.once("SIGTERM", shutdown);
  process.once("SIGINT", shutdown);
}

/** Runs a mock's `main` on this process's arguments; a thrown error is `name: message`, exit 2. */
export async function runMain(
  name: string,
  main: (argv: string[]) => Promise<void>,
): Promise<void> {
  try {
    await main(process.argv.slice(2));
  } catch (e) {
    console.error(`${name}: ${(e as Error).message}`);
    process.exit(2);
  }
}
