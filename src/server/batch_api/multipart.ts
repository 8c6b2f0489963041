/**
 * A streaming `multipart/form-data` reader: parts come out one by one, each body as a byte
 * stream, so an upload of any size goes to disk without being held in memory (Hono's
 * `parseBody` and `Request.formData()` buffer the whole body).
 * @module
 */

/** One part of a multipart body. Read (or cancel) its `body` before asking for the next part. */
export interface MultipartPart {
  /** The form field name (`name=` of `Content-Disposition`). */
  name: string;
  /** The file name, for a file field. */
  filename?: string;
  /** The part's `Content-Type`, when sent. */
  contentType?: string;
  body: ReadableStream<Uint8Array>;
}

/** The body is not valid multipart: the message says where. */
export class MultipartError extends Error {
  override name = "MultipartError";
}

const CRLF = new Uint8Array([13, 10]);
const HEADER_END = new Uint8Array([13, 10, 13, 10]);
const MAX_HEADER_BYTES = 16 * 1024;

function indexOf(haystack: Uint8Array, needle: Uint8Array, from = 0): number {
  const first = needle[0];
  const last = haystack.length - needle.length;
  for (
    let i = haystack.indexOf(first, from);
    i !== -1 && i <= last;
    i = haystack.indexOf(first, i + 1)
  ) {
    let j = 1;
    while (j < needle.length && haystack[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * The boundary of a `multipart/form-data` content type, or undefined when it is not one.
 * @example
 * ```ts
 * import { multipartBoundary } from "./multipart.ts";
 * multipartBoundary('multipart/form-data; boundary="abc"'); // "abc"
 * ```
 */
export function multipartBoundary(contentType: string | undefined): string | undefined {
  if (!contentType || !/^multipart\/form-data\s*(;|$)/i.test(contentType)) return undefined;
  const m = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const boundary = m?.[1] ?? m?.[2];
  return boundary && boundary.length <= 70 ? boundary : undefined;
}

/**
 * Reads the parts of a multipart body as they arrive.
 * @param body The request body.
 * @param boundary From {@linkcode multipartBoundary}.
 * @throws {MultipartError} (from the iteration or a part's body) when the body is malformed.
 *
 * @example
 * ```ts
 * import { readMultipart } from "./multipart.ts";
 * const form = new FormData();
 * form.set("purpose", "batch");
 * const req = new Request("http://x/", { method: "POST", body: form });
 * const boundary = req.headers.get("content-type")!.split("boundary=")[1];
 * for await (const part of readMultipart(req.body!, boundary)) {
 *   console.log(part.name, await new Response(part.body).text()); // purpose batch
 * }
 * ```
 */
export async function* readMultipart(
  body: ReadableStream<Uint8Array>,
  boundary: string,
): AsyncGenerator<MultipartPart> {
  const encoder = new TextEncoder();
  const delimiter = encoder.encode(`\r\n--${boundary}`);
  const reader = body.getReader();
  // A CRLF in front makes the first delimiter look like all the others.
  let buf: Uint8Array = CRLF;
  let ended = false;
  const more = async (): Promise<boolean> => {
    if (ended) return false;
    const { done, value } = await reader.read();
    if (done) {
      ended = true;
      return false;
    }
    buf = concat(buf, value);
    return true;
  };
  const need = async (n: number, what: string) => {
    while (buf.length < n) {
      if (!(await more())) throw new MultipartError(`the multipart body ended ${what}`);
    }
  };
  try {
    // Skip the preamble up to the first delimiter.
    while (true) {
      const at = indexOf(buf, delimiter);
      if (at >= 0) {
        buf = buf.subarray(at);
        break;
      }
      buf = buf.subarray(Math.max(0, buf.length - delimiter.length + 1));
      if (!(await more())) throw new MultipartError("no multipart boundary in the body");
    }
    while (true) {
      // buf starts at a delimiter.
      await need(delimiter.length + 2, "inside a boundary line");
      buf = buf.subarray(delimiter.length);
      if (buf[0] === 45 && buf[1] === 45) return; // "--": the closing delimiter
      // Transport padding, then CRLF.
      let eol: number;
      while ((eol = indexOf(buf, CRLF)) < 0) {
        if (buf.length > 256) throw new MultipartError("a boundary line is too long");
        await need(buf.length + 1, "after a boundary");
      }
      buf = buf.subarray(eol + 2);
      let headerEnd: number;
      // An empty header block ends right away.
      if (buf[0] === 13 && buf[1] === 10) {
        headerEnd = -2;
      } else {
        while ((headerEnd = indexOf(buf, HEADER_END)) < 0) {
          if (buf.length > MAX_HEADER_BYTES) {
            throw new MultipartError(`part headers longer than ${MAX_HEADER_BYTES} bytes`);
          }
          await need(buf.length + 1, "inside the headers of a part");
        }
      }
      const headerText = headerEnd < 0 ? "" : new TextDecoder().decode(buf.subarray(0, headerEnd));
      buf = buf.subarray(headerEnd < 0 ? 2 : headerEnd + 4);
      const headers = new Map<string, string>();
      for (const line of headerText.split("\r\n")) {
        const colon = line.indexOf(":");
        if (colon > 0) {
          headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
        }
      }
      const disposition = headers.get("content-disposition") ?? "";
      const name = /(?:^|;)\s*name="([^"]*)"/i.exec(disposition)?.[1] ??
        /(?:^|;)\s*name=([^;\s]+)/i.exec(disposition)?.[1];
      if (!/^form-data\b/i.test(disposition) || name === undefined) {
        throw new MultipartError("a part has no 'Content-Disposition: form-data; name=...' header");
      }
      const filename = /(?:^|;)\s*filename="([^"]*)"/i.exec(disposition)?.[1] ??
        /(?:^|;)\s*filename=([^;\s]+)/i.exec(disposition)?.[1];
      let partDone = false;
      const partBody = new ReadableStream<Uint8Array>({
        async pull(controller) {
          while (true) {
            const at = indexOf(buf, delimiter);
            if (at >= 0) {
              if (at > 0) controller.enqueue(buf.slice(0, at));
              buf = buf.subarray(at);
              partDone = true;
              controller.close();
              return;
            }
            const safe = buf.length - delimiter.length + 1;
            if (safe > 0) {
              controller.enqueue(buf.slice(0, safe));
              buf = buf.subarray(safe);
              return;
            }
            if (!(await more())) {
              throw new MultipartError(`the multipart body ended inside the part '${name}'`);
            }
          }
        },
      }, { highWaterMark: 0 });
      yield { name, filename, contentType: headers.get("content-type"), body: partBody };
      // Skip what the caller did not read of this part.
      if (!partDone) {
        while (true) {
          const at = indexOf(buf, delimiter);
          if (at >= 0) {
            buf = buf.subarray(at);
            break;
          }
          buf = buf.subarray(Math.max(0, buf.length - delimiter.length + 1));
          if (!(await more())) {
            throw new MultipartError(`the multipart body ended inside the part '${name}'`);
          }
        }
      }
    }
  } finally {
    reader.releaseLock();
  }
}
