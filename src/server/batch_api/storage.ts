/**
 * What the Batch API needs from a disk, as an interface of web types only: the server's runtime
 * edge (`src/fs/batch_storage.ts`) implements it with file handles; tests may implement it in memory.
 * @module
 */

/** Appends text to one file; writes go out in order, several pending ones as one write. */
export interface Appender {
  /** Queues `text`; resolves once it has been written (not necessarily synced). */
  append(text: string): Promise<void>;
  /** Bytes queued but not yet written. */
  readonly pendingBytes: number;
  /** Waits for the queued writes, then flushes the file to the disk (fsync). */
  sync(): Promise<void>;
  /** Syncs and closes. */
  close(): Promise<void>;
}

/**
 * A flat store of named files (names are plain, no folders): the Batch API's uploads, progress
 * files and state. Every method rejects with an error named `NotFoundError` for a missing file
 * where it says so.
 */
export interface BatchStorage {
  /** Where the files live, for messages (e.g. the data directory). */
  readonly location: string;
  /** Names of the stored files. */
  list(): Promise<string[]>;
  /**
   * Streams `bytes` into `name` (created or truncated), then syncs it. Bytes past `maxBytes`
   * make it reject with an error named `TooLargeError` and leave no file.
   * @returns The number of bytes written.
   */
  writeStream(name: string, bytes: ReadableStream<Uint8Array>, maxBytes: number): Promise<number>;
  /** The file as a byte stream; rejects with `NotFoundError` when missing. */
  readStream(name: string): Promise<ReadableStream<Uint8Array>>;
  /** The whole file as text, or undefined when missing. For small files (state). */
  readText(name: string): Promise<string | undefined>;
  /** Replaces `name` atomically with `text`: a crash leaves either the old or the new content. */
  writeAtomic(name: string, text: string): Promise<void>;
  /** Renames atomically. */
  rename(from: string, to: string): Promise<void>;
  /** Size in bytes, or undefined when missing. */
  size(name: string): Promise<number | undefined>;
  /** Removes the file; no error when missing. */
  remove(name: string): Promise<void>;
  /** Opens `name` for appending (created when missing). */
  openAppend(name: string): Promise<Appender>;
  /**
   * Cuts a last line that a crash left without its newline (created when missing).
   * @returns True if it cut anything.
   */
  repairTail(name: string): Promise<boolean>;
}

/** An error named `NotFoundError`. */
export class NotFoundError extends Error {
  override name = "NotFoundError";
}

/** An error named `TooLargeError`. */
export class TooLargeError extends Error {
  override name = "TooLargeError";
}
