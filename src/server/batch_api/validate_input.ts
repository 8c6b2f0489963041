/**
 * The `validating` step of a batch: one streaming pass over the input file that checks every
 * line's shape (OpenAI's codes: `invalid_json_line`, `duplicate_custom_id`, `url_mismatch`,
 * `empty_file`...) and counts the requests; and the per-request body check done when it runs.
 * @module
 */
import * as v from "valibot";
import { IdSet } from "../../id_set.ts";
import { TextLineStream } from "../../text_line_stream.ts";
import type { BatchErrorEntry } from "./records.ts";

/** Most entries kept in a failed batch's `errors.data`; the count of the rest is in the last. */
export const MAX_REPORTED_ERRORS = 100;

const Line = v.looseObject({
  custom_id: v.pipe(
    v.string("must be a string"),
    v.nonEmpty("must not be empty"),
    v.maxLength(512, "must be at most 512 characters"),
  ),
  method: v.literal("POST", "must be 'POST'"),
  url: v.string("must be a string"),
  body: v.looseObject({}, "must be a JSON object"),
});

const Message = v.looseObject({ role: v.string("must be a string") }, "must be an object");
const ChatBody = v.looseObject({
  model: v.optional(v.string("must be a string")),
  messages: v.pipe(
    v.array(Message, "must be an array of messages"),
    v.nonEmpty("must not be empty"),
  ),
});

/** What {@linkcode validateInput} found. */
export interface InputCheck {
  /** Requests (non-blank lines). */
  total: number;
  /** Problems, at most {@linkcode MAX_REPORTED_ERRORS} (+1 saying how many more). */
  errors: BatchErrorEntry[];
}

/**
 * Checks every line of an input file: JSON, `custom_id` (present, unique), `method` POST, `url`
 * equal to the batch's `endpoint`, `body` an object. Streams: memory is the id set, not the file.
 * @param lines The input file's text.
 * @param options The batch's endpoint and the longest line allowed.
 */
export async function validateInput(
  text: ReadableStream<string>,
  options: { endpoint: string; maxLineLength: number; signal?: AbortSignal },
): Promise<InputCheck> {
  const ids = new IdSet();
  const errors: BatchErrorEntry[] = [];
  let more = 0;
  const report = (entry: BatchErrorEntry) => {
    if (errors.length < MAX_REPORTED_ERRORS) errors.push(entry);
    else more++;
  };
  let line = 0;
  let total = 0;
  for await (
    const raw of text.pipeThrough(new TextLineStream({ maxLineLength: options.maxLineLength }))
  ) {
    line++;
    if (raw.trim() === "") continue;
    total++;
    if (total % 4096 === 0) options.signal?.throwIfAborted();
    if (raw.length > options.maxLineLength) {
      report({
        code: "line_too_long",
        message: `Line ${line} is longer than the limit of ${options.maxLineLength} characters.`,
        param: null,
        line,
      });
      continue;
    }
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      report({
        code: "invalid_json_line",
        message: "This line is not parseable as valid JSON.",
        param: null,
        line,
      });
      continue;
    }
    const r = v.safeParse(Line, value);
    if (!r.success) {
      const issue = r.issues[0];
      const param = v.getDotPath(issue) ?? null;
      const missing = issue.input === undefined && param !== null;
      report({
        code: missing ? "missing_required_parameter" : "invalid_value",
        message: param
          ? `Line ${line}: ${missing ? `'${param}' is missing` : `'${param}' ${issue.message}`}.`
          : `Line ${line}: must be a JSON object with custom_id, method, url and body.`,
        param,
        line,
      });
      continue;
    }
    if (r.output.url !== options.endpoint) {
      report({
        code: "url_mismatch",
        message:
          `Line ${line}: the url '${r.output.url}' does not match the batch's endpoint '${options.endpoint}'.`,
        param: "url",
        line,
      });
      continue;
    }
    const first = ids.add(r.output.custom_id, line);
    if (first !== 0) {
      report({
        code: "duplicate_custom_id",
        message:
          `Line ${line}: the custom_id '${r.output.custom_id}' was already used on line ${first}; each custom_id must be unique.`,
        param: "custom_id",
        line,
      });
    }
  }
  if (total === 0 && errors.length === 0) {
    errors.push({
      code: "empty_file",
      message: "The input file has no requests.",
      param: null,
      line: null,
    });
  }
  if (more > 0) {
    errors.push({
      code: "too_many_errors",
      message: `${more} more lines have errors; only the first ${MAX_REPORTED_ERRORS} are listed.`,
      param: null,
      line: null,
    });
  }
  return { total, errors };
}

/**
 * Checks one request's body before it is sent (chat completions: `messages`, a non-empty array).
 * @returns undefined when it may go, else the 400 answer's message and param.
 */
export function checkBody(
  endpoint: string,
  body: unknown,
): { message: string; param: string | null; code: string } | undefined {
  if (endpoint !== "/v1/chat/completions") return undefined;
  const r = v.safeParse(ChatBody, body);
  if (r.success) return undefined;
  const issue = r.issues[0];
  const param = v.getDotPath(issue) ?? null;
  return {
    code: issue.input === undefined ? "missing_required_parameter" : "invalid_value",
    message: param
      ? issue.input === undefined
        ? `Missing required parameter: '${param}'.`
        : `Invalid '${param}': ${issue.message}.`
      : `Invalid body: ${issue.message}.`,
    param,
  };
}
