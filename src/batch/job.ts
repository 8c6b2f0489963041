/**
 * The job file: what a batch job planned, which provider batches it created and how far each
 * got. Written before every step that cannot be repeated, so a crashed or rebooted run
 * re-attaches instead of submitting again. Validated with valibot when read back.
 * @module
 */
import * as v from "valibot";
import type { BatchState } from "./backend.ts";

/** Version of the job file format. */
export const JOB_VERSION = 1;

/**
 * Where a part (one batch's worth of items) is:
 * - `planned`: its items are stored; nothing was sent.
 * - `creating`: its tag is recorded and a create call may have reached the provider; a
 *   resume looks for a batch carrying the tag before it ever creates one.
 * - `submitted`: the provider's batch id is recorded.
 * - `rescue`: its items go through the realtime path (deadline passed).
 * - `collected`: every item is in the output or the errors file, or in a later part.
 */
export type PartState = "planned" | "creating" | "submitted" | "rescue" | "collected";

/** Where the job is. */
export type JobState = "planning" | "running" | "rescuing" | "cancelling" | "done";

const BATCH_STATES = [
  "pending",
  "running",
  "finalizing",
  "succeeded",
  "failed",
  "expired",
  "cancelling",
  "cancelled",
] as const satisfies readonly BatchState[];

const Count = v.pipe(v.number(), v.integer(), v.minValue(0));
const Time = v.pipe(v.number(), v.finite());

const PartSchema: v.GenericSchema<unknown, Part> = v.object({
  name: v.pipe(v.string(), v.regex(/^[\w.-]+$/, "must be a plain file name")),
  group: v.string(),
  items: Count,
  bytes: Count,
  /** How many times these items have been submitted, this part included (1-based). */
  round: v.pipe(v.number(), v.integer(), v.minValue(1)),
  state: v.picklist(["planned", "creating", "submitted", "rescue", "collected"]),
  /** Create attempts of this part; the tag changes with each. */
  attempt: Count,
  tag: v.optional(v.string()),
  /** A create call was sent with the current tag (its answer may have been lost). */
  createSent: v.optional(v.boolean()),
  fileId: v.optional(v.string()),
  batchId: v.optional(v.string()),
  remote: v.optional(v.object({
    state: v.picklist(BATCH_STATES),
    raw: v.string(),
    total: v.optional(Count),
    completed: v.optional(Count),
    failed: v.optional(Count),
    checkedAt: Time,
  })),
  /** Wall-clock ms: the batch was created / reached a final state. */
  submittedAt: v.optional(Time),
  endedAt: v.optional(Time),
  /** Not before this wall-clock time (a requeue after a retryable failure). */
  notBefore: v.optional(Time),
  /** Submit only when fewer than this many batches are open (after an enqueued-token limit). */
  waitActive: v.optional(Count),
  cancelSentAt: v.optional(Time),
  /** The batch did not stop within the grace period after its cancel; its results are not read. */
  abandoned: v.optional(v.boolean()),
  ok: v.optional(Count),
  failed: v.optional(Count),
  resent: v.optional(Count),
});

const JobSchema: v.GenericSchema<unknown, Job> = v.object({
  version: v.literal(JOB_VERSION),
  id: v.pipe(v.string(), v.regex(/^[\w-]+$/, "must be a plain id")),
  provider: v.picklist(["openai", "gemini"]),
  model: v.string(),
  baseUrl: v.optional(v.string()),
  input: v.optional(v.string()),
  createdAt: Time,
  deadlineAt: v.optional(Time),
  state: v.picklist(["planning", "running", "rescuing", "cancelling", "done"]),
  /** Valid items planned. */
  items: Count,
  /** Lines rejected while planning (bad JSON, unknown format, invalid, duplicate id). */
  invalid: Count,
  /** Items skipped because their id was already in the output. */
  skipped: Count,
  /** Items written to the output / errors file by this job. */
  ok: Count,
  failed: Count,
  /** Items sent through the realtime path. */
  realtime: Count,
  tokensIn: Count,
  tokensOut: Count,
  nextPart: Count,
  parts: v.array(PartSchema),
  finishedAt: v.optional(Time),
});

/** One batch's worth of items (fields as in `PartSchema`). */
export interface Part {
  name: string;
  group: string;
  items: number;
  bytes: number;
  /** How many times these items have been submitted, this part included (1-based). */
  round: number;
  state: "planned" | "creating" | "submitted" | "rescue" | "collected";
  /** Create attempts of this part; the tag changes with each. */
  attempt: number;
  tag?: string;
  /** A create call was sent with the current tag (its answer may have been lost). */
  createSent?: boolean;
  fileId?: string;
  batchId?: string;
  remote?: {
    state: BatchState;
    raw: string;
    total?: number;
    completed?: number;
    failed?: number;
    checkedAt: number;
  };
  /** Wall-clock ms: the batch was created / reached a final state. */
  submittedAt?: number;
  endedAt?: number;
  /** Not before this wall-clock time (a requeue after a retryable failure). */
  notBefore?: number;
  /** Submit only when fewer than this many batches are open (after an enqueued-token limit). */
  waitActive?: number;
  cancelSentAt?: number;
  /** The batch did not stop within the grace period after its cancel; its results are not read. */
  abandoned?: boolean;
  ok?: number;
  failed?: number;
  resent?: number;
}

/** A batch job, as saved in `<output>.batch.json` (fields as in `JobSchema`). */
export interface Job {
  version: typeof JOB_VERSION;
  id: string;
  provider: "openai" | "gemini";
  model: string;
  baseUrl?: string;
  input?: string;
  createdAt: number;
  deadlineAt?: number;
  state: "planning" | "running" | "rescuing" | "cancelling" | "done";
  /** Valid items planned. */
  items: number;
  /** Lines rejected while planning (bad JSON, unknown format, invalid, duplicate id). */
  invalid: number;
  /** Items skipped because their id was already in the output. */
  skipped: number;
  /** Items written to the output / errors file by this job. */
  ok: number;
  failed: number;
  /** Items sent through the realtime path. */
  realtime: number;
  tokensIn: number;
  tokensOut: number;
  nextPart: number;
  parts: Part[];
  finishedAt?: number;
}

/**
 * Validates a job file's parsed JSON.
 * @throws {TypeError} naming the field, when it is not a job file this version can read.
 */
export function parseJob(value: unknown): Job {
  const r = v.safeParse(JobSchema, value);
  if (!r.success) {
    const issue = r.issues[0];
    const path = v.getDotPath(issue);
    throw new TypeError(
      `not a valid job file${path ? ` (field '${path}')` : ""}: ${issue.message}`,
    );
  }
  return r.output;
}

/** Parts whose batch may still be running at the provider. */
export function activeParts(job: Job): Part[] {
  return job.parts.filter((p) => p.state === "creating" || p.state === "submitted");
}

/**
 * True when the job has batches at the provider that are not all collected yet: it must be
 * resumed (`--resume`), never submitted again. A job still `planning` has submitted nothing (the
 * plan is saved as `running` before the first batch is created), so it is planned anew.
 */
export function isUnfinished(job: Job): boolean {
  return job.state !== "done" && job.state !== "planning";
}
