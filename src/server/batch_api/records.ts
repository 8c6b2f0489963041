/**
 * The Batch API's objects in OpenAI's exact shapes: files, batches, list pages, errors, and the
 * lines of output and error files; ids as OpenAI writes them (`file-…`, `batch_…`, `batch_req_…`).
 * @module
 */

/** OpenAI's batch statuses. */
export type BatchStatus =
  | "validating"
  | "failed"
  | "in_progress"
  | "finalizing"
  | "completed"
  | "expired"
  | "cancelling"
  | "cancelled";

/** Statuses a batch never leaves. */
export const FINAL_STATUSES: ReadonlySet<BatchStatus> = new Set([
  "failed",
  "completed",
  "expired",
  "cancelled",
]);

/** A file object, as `GET /v1/files/{id}` answers. */
export interface FileObject {
  id: string;
  object: "file";
  bytes: number;
  created_at: number;
  filename: string;
  purpose: "batch" | "batch_output";
  status: "processed";
  expires_at: number | null;
  status_details: null;
}

/** One entry of a failed batch's `errors.data`. */
export interface BatchErrorEntry {
  code: string;
  message: string;
  param: string | null;
  line: number | null;
}

/** A batch object, as `GET /v1/batches/{id}` answers. */
export interface BatchObject {
  id: string;
  object: "batch";
  endpoint: string;
  errors: { object: "list"; data: BatchErrorEntry[] } | null;
  input_file_id: string;
  completion_window: string;
  status: BatchStatus;
  output_file_id: string | null;
  error_file_id: string | null;
  created_at: number;
  in_progress_at: number | null;
  expires_at: number | null;
  finalizing_at: number | null;
  completed_at: number | null;
  failed_at: number | null;
  expired_at: number | null;
  cancelling_at: number | null;
  cancelled_at: number | null;
  request_counts: { total: number; completed: number; failed: number };
  metadata: Record<string, string> | null;
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

function randomText(length: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  let out = "";
  for (const b of bytes) out += ALPHABET[b % ALPHABET.length];
  return out;
}

/** A new file id, `file-` and 22 letters and digits. */
export function newFileId(): string {
  return `file-${randomText(22)}`;
}

/** A new batch id, `batch_` and 32 hex digits. */
export function newBatchId(): string {
  return `batch_${crypto.randomUUID().replaceAll("-", "")}`;
}

/** A new request id for an output or error line, `batch_req_` and 32 hex digits. */
export function newRequestId(): string {
  return `batch_req_${crypto.randomUUID().replaceAll("-", "")}`;
}

/** Whole seconds since the epoch, as OpenAI's timestamps. */
export function unixSeconds(ms: number): number {
  return Math.floor(ms / 1000);
}

/** OpenAI's `type` of an HTTP error, from its status. */
export function errorType(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 429) return "rate_limit_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

/** An OpenAI error body: `{ error: { message, type, param, code } }`. */
export function errorBody(
  status: number,
  message: string,
  code: string | null = null,
  param: string | null = null,
): { error: { message: string; type: string; param: string | null; code: string | null } } {
  return { error: { message, type: errorType(status), param, code } };
}

/**
 * An error file line for a request that got an HTTP answer (`response` with its status and the
 * provider's error) or none (`error`, `response: null`: a timeout, a network error, a batch
 * cancelled or expired before the request was sent).
 */
export function errorLine(
  customId: string,
  failure: { status: number; code: string; message: string; param?: string | null },
): Record<string, unknown> {
  const id = newRequestId();
  if (failure.status >= 400) {
    return {
      id,
      custom_id: customId,
      response: {
        status_code: failure.status,
        request_id: null,
        body: errorBody(failure.status, failure.message, failure.code, failure.param ?? null),
      },
      error: null,
    };
  }
  return {
    id,
    custom_id: customId,
    response: null,
    error: { code: failure.code, message: failure.message },
  };
}

/** A list page: `{ object: "list", data, first_id, last_id, has_more }`. */
export function listPage<T extends { id: string }>(
  data: T[],
  hasMore: boolean,
): {
  object: "list";
  data: T[];
  first_id: string | null;
  last_id: string | null;
  has_more: boolean;
} {
  return {
    object: "list",
    data,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
    has_more: hasMore,
  };
}
