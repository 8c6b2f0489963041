/**
 * Ctrl-C in two stages, as `run`, batch mode and `serve` all answer it: the first press stops
 * gracefully (no new work, what is in flight finishes), a second one quits at once. Plain
 * functions on the caller's `onInterrupt`, so `serve` (which Workers bundle) can use it too.
 * @module
 */

/** What registers the Ctrl-C (and SIGTERM) handler: the CLI's `CliIo`, `serve`'s `ServeIo`. */
export interface InterruptSource {
  /** Registers the handler; returns a function that removes it. */
  onInterrupt: (handler: () => void) => () => void;
}

/**
 * Calls `first` on the first interrupt and `second` on every later one.
 * @returns A function that removes the handler.
 */
export function onTwoStageInterrupt(
  io: InterruptSource,
  first: () => void,
  second: () => void,
): () => void {
  let interrupts = 0;
  return io.onInterrupt(() => {
    interrupts++;
    if (interrupts === 1) first();
    else second();
  });
}

/**
 * The usual two stages for a run: the first interrupt aborts `stop` (no new requests) and says
 * `message()`, the second aborts `hard` (quit now).
 * @returns A function that removes the handler.
 */
export function stopThenQuit(
  io: InterruptSource & { stderr: (text: string) => void },
  o: { stop: AbortController; hard: AbortController; message: () => string },
): () => void {
  return onTwoStageInterrupt(
    io,
    () => {
      o.stop.abort(new DOMException("interrupted", "AbortError"));
      io.stderr(o.message());
    },
    () => o.hard.abort(new DOMException("interrupted twice", "AbortError")),
  );
}
