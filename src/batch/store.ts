/**
 * Where a batch job keeps its state: the job file, the items of each part, and the cancel
 * request. An interface so that `src/` stays free of file APIs: the CLI stores on disk, tests
 * in memory.
 * @module
 */
import type { Job } from "./job.ts";

/** Writes the lines of one part. */
export interface PartWriter {
  write(line: string): void | Promise<void>;
  close(): Promise<void>;
}

/** Persistence of one batch job. */
export interface JobStore {
  /** The saved job, or undefined when there is none. */
  load(): Promise<Job | undefined>;
  /** Replaces the saved job atomically (a crash leaves the old or the new one, whole). */
  save(job: Job): Promise<void>;
  /** Starts (or replaces) the part `name`. */
  createPart(name: string): PartWriter;
  /** The lines of part `name`, in order. */
  readPart(name: string): AsyncIterable<string>;
  /** Removes every part (the job is done, or planning starts over). */
  removeParts(): Promise<void>;
  /** True when someone asked for the job to be cancelled. */
  cancelRequested(): Promise<boolean>;
  /** Records a cancel request. */
  requestCancel(): Promise<void>;
  /** Forgets the cancel request. */
  clearCancel(): Promise<void>;
}

/** A {@linkcode JobStore} in memory, for tests and embedding. Saved jobs are deep copies. */
export class MemoryJobStore implements JobStore {
  job: Job | undefined;
  parts: Map<string, string[]> = new Map();
  cancel = false;
  /** Number of saves, for tests. */
  saves = 0;

  load(): Promise<Job | undefined> {
    return Promise.resolve(this.job === undefined ? undefined : structuredClone(this.job));
  }
  save(job: Job): Promise<void> {
    this.saves++;
    this.job = structuredClone(job);
    return Promise.resolve();
  }
  createPart(name: string): PartWriter {
    const lines: string[] = [];
    this.parts.set(name, lines);
    return { write: (line) => void lines.push(line), close: () => Promise.resolve() };
  }
  async *readPart(name: string): AsyncIterable<string> {
    const lines = this.parts.get(name);
    if (lines === undefined) throw new Error(`no part '${name}' in the store`);
    yield* lines;
  }
  removeParts(): Promise<void> {
    this.parts.clear();
    return Promise.resolve();
  }
  cancelRequested(): Promise<boolean> {
    return Promise.resolve(this.cancel);
  }
  requestCancel(): Promise<void> {
    this.cancel = true;
    return Promise.resolve();
  }
  clearCancel(): Promise<void> {
    this.cancel = false;
    return Promise.resolve();
  }
}
