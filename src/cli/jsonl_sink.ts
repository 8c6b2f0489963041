/**
 * Where a run's records go: one JSON line per record, each written whole with its own `write`
 * the moment it completes, so a crash loses at most the line being written. A write the disk
 * refuses (full, quota, I/O error) is cut back off the file, so no torn line stays in the middle
 * of it, and surfaces as a {@linkcode DiskError}. A runtime edge: plain `node:` file handles.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";

/** The error codes that mean "the disk can not take this write", not a bug. */
const DISK_CODES = new Set(["ENOSPC", "EDQUOT", "EIO", "EFBIG", "EROFS"]);

/** True for an error the disk gave (full, quota, I/O error, file too large, read-only). */
export function isDiskError(error: unknown): error is NodeJS.ErrnoException {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code !== undefined && DISK_CODES.has(code);
}

/** Says what the disk refused, in words. */
export function describeDiskError(error: NodeJS.ErrnoException, file?: string): string {
  const what = error.code === "ENOSPC"
    ? "no space left on the device"
    : error.code === "EDQUOT"
    ? "the disk quota is exceeded"
    : error.code === "EIO"
    ? "an I/O error"
    : error.code === "EFBIG"
    ? "the file is too large"
    : error.code === "EROFS"
    ? "the file system is read-only"
    : error.message;
  return `cannot write ${file ?? error.path ?? "a file"}: ${what} (${error.code})`;
}

/** Appends lines to a file or stdout. */
export interface Sink {
  write(record: unknown): void | Promise<void>;
  close(): void;
}

/**
 * A sink writing JSON lines to `file` (created with its folders; truncated unless `append`).
 * @throws the disk's error (see {@linkcode isDiskError}) from `write`, after cutting what part of
 *   the line got written back off the file.
 */
export function fileSink(file: string, append: boolean): Sink {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const fd = fs.openSync(file, append ? "a" : "w");
  let size = append ? fs.fstatSync(fd).size : 0;
  return {
    write(record) {
      const bytes = Buffer.from(JSON.stringify(record) + "\n");
      let done = 0;
      try {
        // A write may take only part of the line (a nearly full disk): write the rest.
        while (done < bytes.length) done += fs.writeSync(fd, bytes, done);
        size += done;
      } catch (error) {
        if (done > 0) {
          try {
            fs.ftruncateSync(fd, size); // no torn line; "a" mode appends at the new end
          } catch {
            // a device that can not truncate (/dev/full): nothing was kept there anyway
          }
        }
        throw error;
      }
    },
    close: () => fs.closeSync(fd),
  };
}

/** A sink writing JSON lines through `write` (stdout), with its backpressure. */
export function textSink(write: (text: string) => void | Promise<void>): Sink {
  return { write: (record) => write(JSON.stringify(record) + "\n"), close: () => {} };
}
