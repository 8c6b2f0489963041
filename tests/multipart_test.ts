import { expect, test } from "bun:test";
import {
  multipartBoundary,
  type MultipartPart,
  readMultipart,
} from "../src/server/batch_api/multipart.ts";

async function formBytes(form: FormData): Promise<{ bytes: Uint8Array; boundary: string }> {
  const req = new Request("http://x/", { method: "POST", body: form });
  const boundary = multipartBoundary(req.headers.get("content-type") ?? undefined);
  return { bytes: new Uint8Array(await req.arrayBuffer()), boundary: boundary! };
}

/** The bytes as a stream of `size`-byte chunks. */
function chunked(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= bytes.length) return c.close();
      c.enqueue(bytes.slice(at, at + size));
      at += size;
    },
  });
}

async function parts(stream: ReadableStream<Uint8Array>, boundary: string) {
  const out: { name: string; filename?: string; text: string }[] = [];
  for await (const p of readMultipart(stream, boundary)) {
    out.push({ name: p.name, filename: p.filename, text: await new Response(p.body).text() });
  }
  return out;
}

test("readMultipart() gives each field and file whatever the chunk boundaries", async () => {
  const file = '{"custom_id":"a"}\r\n{"custom_id":"b"}\n' + "x".repeat(300) + "\r\n--";
  const form = new FormData();
  form.set("file", new File([file], "in.jsonl"));
  form.set("purpose", "batch");
  const { bytes, boundary } = await formBytes(form);
  for (const size of [1, 2, 3, 7, 16, 61, 64, 500, bytes.length]) {
    expect(await parts(chunked(bytes, size), boundary)).toEqual([
      { name: "file", filename: "in.jsonl", text: file },
      { name: "purpose", filename: undefined, text: "batch" },
    ]);
  }
});

test("readMultipart() skips a part the caller does not read", async () => {
  const form = new FormData();
  form.set("skipped", new File(["y".repeat(10_000)], "big.bin"));
  form.set("purpose", "batch");
  const { bytes, boundary } = await formBytes(form);
  const names: string[] = [];
  let purpose = "";
  for await (
    const p of readMultipart(chunked(bytes, 100), boundary) as AsyncIterable<MultipartPart>
  ) {
    names.push(p.name);
    if (p.name === "purpose") purpose = await new Response(p.body).text();
  }
  expect(names).toEqual(["skipped", "purpose"]);
  expect(purpose).toBe("batch");
});

test("readMultipart() rejects a body cut short or without a boundary, naming the problem", async () => {
  const form = new FormData();
  form.set("file", new File(["abc".repeat(100)], "in.jsonl"));
  const { bytes, boundary } = await formBytes(form);
  await expect(parts(chunked(bytes.slice(0, bytes.length - 60), 50), boundary)).rejects.toThrow(
    "ended inside the part 'file'",
  );
  await expect(parts(chunked(new TextEncoder().encode("no parts here"), 4), boundary)).rejects
    .toThrow("no multipart boundary");
});

test("multipartBoundary() reads quoted and bare boundaries, and only of form data", () => {
  expect(multipartBoundary('multipart/form-data; boundary="a b"')).toBe("a b");
  expect(multipartBoundary("multipart/form-data;boundary=xyz; charset=utf-8")).toBe("xyz");
  expect(multipartBoundary("application/json")).toBeUndefined();
  expect(multipartBoundary("multipart/form-data")).toBeUndefined();
  expect(multipartBoundary(undefined)).toBeUndefined();
});
