// Tests of src/text_line_stream.ts: line ends, lines split across chunks, UTF-8 split inside a
// character, and the bound on line length.
import { expect, test } from "bun:test";
import { TextLineStream, type TextLineStreamOptions } from "../src/text_line_stream.ts";

function lines(chunks: string[], options?: TextLineStreamOptions): Promise<string[]> {
  return Array.fromAsync(ReadableStream.from(chunks).pipeThrough(new TextLineStream(options)));
}

test("TextLineStream splits on \\n and on \\r\\n", async () => {
  expect(await lines(["a\nb\r\nc\n"])).toEqual(["a", "b", "c"]);
  expect(await lines(["one\r\ntwo\r\n"])).toEqual(["one", "two"]);
});

test("TextLineStream joins a line split across chunks", async () => {
  expect(await lines(["ab", "cd\ne", "f", "g\n"])).toEqual(["abcd", "efg"]);
  expect(await lines(['{"id":', "1}", '\n{"id":2}\n'])).toEqual(['{"id":1}', '{"id":2}']);
});

test("TextLineStream treats \\r at a chunk's end and \\n at the next's start as one line end", async () => {
  expect(await lines(["a\r", "\nb\r", "\n"])).toEqual(["a", "b"]);
  expect(await lines(["a\r", "\n", "\r", "\n", "c"])).toEqual(["a", "", "c"]);
});

test("TextLineStream emits a last line without a newline", async () => {
  expect(await lines(["a\nlast"])).toEqual(["a", "last"]);
  expect(await lines(["la", "st"])).toEqual(["last"]);
});

test("TextLineStream gives no lines for an empty input", async () => {
  expect(await lines([])).toEqual([]);
  expect(await lines([""])).toEqual([]);
  expect(await lines(["", ""])).toEqual([]);
});

test("TextLineStream keeps blank lines as empty strings", async () => {
  expect(await lines(["a\n\nb\n"])).toEqual(["a", "", "b"]);
  expect(await lines(["\n", "\r\n", "x\n\n"])).toEqual(["", "", "x", ""]);
  expect(await lines(["\n"])).toEqual([""]);
});

test("TextLineStream after TextDecoderStream keeps UTF-8 characters split across byte chunks", async () => {
  const text = "héllo wörld ✓\n日本語 🙂\r\nlast ü";
  const bytes = new TextEncoder().encode(text);
  // Cut every 1, 2 or 3 bytes so that multi-byte characters are split at every offset.
  for (const size of [1, 2, 3]) {
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.slice(i, i + size));
    const out = await Array.fromAsync(
      ReadableStream.from(chunks)
        .pipeThrough(new TextDecoderStream())
        .pipeThrough(new TextLineStream()),
    );
    expect(out).toEqual(["héllo wörld ✓", "日本語 🙂", "last ü"]);
  }
});

test("TextLineStream cuts a long line to maxLineLength + 1 and keeps the next line whole", async () => {
  const long = "x".repeat(50);
  expect(await lines([`${long}\nshort\n`], { maxLineLength: 10 })).toEqual([
    "x".repeat(11),
    "short",
  ]);
  // A line of exactly the limit is kept whole, one more is cut (which keeps it at max + 1).
  expect(await lines(["abcd\nabcde\nabcdef\n"], { maxLineLength: 4 })).toEqual([
    "abcd",
    "abcde",
    "abcde",
  ]);
});

test("TextLineStream cuts a long line spanning many chunks and keeps the next line whole", async () => {
  const chunks = [...Array(100)].map(() => "y".repeat(7));
  chunks.push("yyy\r\nnext", " line\r\n", "z".repeat(30), "\n\nend");
  expect(await lines(chunks, { maxLineLength: 10 })).toEqual([
    "y".repeat(11),
    "next line",
    "z".repeat(11),
    "",
    "end",
  ]);
});

test("TextLineStream cuts a long last line without a newline", async () => {
  expect(await lines(["a\n", "b".repeat(5), "b".repeat(5)], { maxLineLength: 3 })).toEqual([
    "a",
    "bbbb",
  ]);
  expect(await lines(["a\nbbbbb"], { maxLineLength: 3 })).toEqual(["a", "bbbb"]);
});

test("TextLineStream rejects maxLineLength 0 with a RangeError naming the value", () => {
  expect(() => new TextLineStream({ maxLineLength: 0 })).toThrow(RangeError);
  expect(() => new TextLineStream({ maxLineLength: 0 })).toThrow("current value is 0");
  expect(() => new TextLineStream({ maxLineLength: -3 })).toThrow(RangeError);
  expect(() => new TextLineStream({ maxLineLength: NaN })).toThrow(RangeError);
});
