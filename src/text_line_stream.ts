/**
 * Splits a text stream into lines. `@std/streams`' TextLineStream is on JSR, which our machines
 * cannot reach, and no npm copy of it is maintained; this is our own, with a bound on line size.
 * @module
 */

/** Options for {@linkcode TextLineStream}. */
export interface TextLineStreamOptions {
  /**
   * Longest line kept whole, in UTF-16 code units. A longer line is emitted cut to
   * `maxLineLength + 1` characters (so the reader can tell and reject it) and the rest of it is
   * dropped, keeping memory bounded whatever the input.
   * @default Infinity
   */
  maxLineLength?: number;
}

/**
 * A TransformStream from text chunks to lines, without their `\n` or `\r\n`. A last line
 * without a newline is emitted too; an empty input gives no lines.
 *
 * @example
 * ```ts
 * import { TextLineStream } from "./text_line_stream.ts";
 * const lines = ReadableStream.from(["a\nb", "\r\nc"]).pipeThrough(new TextLineStream());
 * const out = await Array.fromAsync(lines); // ["a", "b", "c"]
 * ```
 */
export class TextLineStream extends TransformStream<string, string> {
  constructor(options: TextLineStreamOptions = {}) {
    const max = options.maxLineLength ?? Infinity;
    if (!(max > 0)) {
      throw new RangeError(
        `Cannot split lines as 'maxLineLength' must be above 0: current value is ${max}`,
      );
    }
    let buffer = "";
    let skipping = false; // inside an oversized line whose head was already emitted
    const emit = (line: string, controller: TransformStreamDefaultController<string>) => {
      if (skipping) {
        skipping = false;
        return;
      }
      if (line.endsWith("\r")) line = line.slice(0, -1);
      controller.enqueue(line.length > max ? line.slice(0, max + 1) : line);
    };
    super({
      transform(chunk, controller) {
        let start = 0;
        let nl = chunk.indexOf("\n");
        while (nl !== -1) {
          const piece = chunk.slice(start, nl);
          emit(buffer === "" ? piece : buffer + piece, controller);
          buffer = "";
          start = nl + 1;
          nl = chunk.indexOf("\n", start);
        }
        if (skipping) return;
        buffer += chunk.slice(start);
        if (buffer.length > max + 1) {
          controller.enqueue(buffer.slice(0, max + 1));
          buffer = "";
          skipping = true;
        }
      },
      flush(controller) {
        if (buffer !== "" && !skipping) emit(buffer, controller);
      },
    });
  }
}
