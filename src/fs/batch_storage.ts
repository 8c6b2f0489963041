/**
 * The Batch API's storage on a directory of the local disk (`serve --data-dir`): a runtime edge,
 * plain `node:` file handles as Bun, Deno and Node all provide them.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import process from "node:process";
import { ConfigError } from "../errors.ts";
import { cutUnfinishedLastLine, fileBytes } from "./files.ts";
import {
  type Appender,
  type BatchStorage,
  NotFoundError,
  TooLargeError,
} from "../server/batch_api/storage.ts";

const NAME = /^[A-Za-z0-9_.-]+$/;

/**
 * The default data directory: `$XDG_DATA_HOME/model-fine-tuner`, else
 * `~/.local/share/model-fine-tuner`, else `./mft-data`.
 */
export function defaultDataDir(env: Record<string, string | undefined>): string {
  // Deno with a narrow --allow-env throws on a variable not listed: that is "unset" here.
  const get = (name: string) => {
    try {
      return env[name] || undefined;
    } catch {
      return undefined;
    }
  };
  const xdg = get("XDG_DATA_HOME");
  if (xdg) return path.join(xdg, "model-fine-tuner");
  const home = get("HOME");
  if (home) return path.join(home, ".local", "share", "model-fine-tuner");
  return path.resolve("mft-data");
}

/**
 * The storage `serve` uses: in `dir` when one was given (`--data-dir`, `MFT_DATA_DIR`), and then
 * any failure is the user's to fix; else in {@linkcode defaultDataDir}, and when that can not be
 * used (no permission, another server holds it) the server runs without the Batch API and says
 * why through `warn`.
 * @throws {ConfigError} when the given `dir` can not be used.
 */
export function openServerStorage(
  dir: string | undefined,
  env: Record<string, string | undefined>,
  warn: (line: string) => void,
): BatchStorage | undefined {
  if (dir !== undefined) {
    try {
      return createFileStorage(dir);
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      throw new ConfigError(
        `cannot use the data directory ${dir}: ${(error as Error)?.message ?? error}`,
      );
    }
  }
  const fallback = defaultDataDir(env);
  try {
    return createFileStorage(fallback);
  } catch (error) {
    warn(
      `serve: no Batch API (/v1/files, /v1/batches): ${
        (error as Error)?.message ?? error
      }; pass --data-dir DIR to have it`,
    );
    return undefined;
  }
}

function isMissing(error: unknown): boolean {
  return (error as { code?: string })?.code === "ENOENT";
}

/** Syncs a directory, so a rename or a new file in it survives a power cut. */
async function syncDir(dir: string): Promise<void> {
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(dir, "r");
    await handle.sync();
  } catch {
    // Some systems can not open or sync a directory; the rename itself is still atomic.
  } finally {
    await handle?.close();
  }
}

class FileAppender implements Appender {
  #handle: fs.promises.FileHandle;
  #queue: { text: string; done: () => void; fail: (e: unknown) => void }[] = [];
  #writing: Promise<void> | undefined;
  #error: unknown;
  pendingBytes = 0;

  constructor(handle: fs.promises.FileHandle) {
    this.#handle = handle;
  }

  append(text: string): Promise<void> {
    if (this.#error !== undefined) return Promise.reject(this.#error);
    return new Promise<void>((done, fail) => {
      this.#queue.push({ text, done, fail });
      this.pendingBytes += text.length;
      this.#writing ??= this.#drain().finally(() => (this.#writing = undefined));
    });
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue;
      this.#queue = [];
      const text = batch.map((b) => b.text).join("");
      try {
        await this.#handle.write(text);
        this.pendingBytes -= text.length;
        for (const b of batch) b.done();
      } catch (error) {
        this.#error = error;
        for (const b of [...batch, ...this.#queue]) b.fail(error);
        this.#queue = [];
        return;
      }
    }
  }

  async sync(): Promise<void> {
    while (this.#writing) await this.#writing;
    if (this.#error !== undefined) throw this.#error;
    await this.#handle.sync();
  }

  async close(): Promise<void> {
    try {
      await this.sync();
    } finally {
      await this.#handle.close();
    }
  }
}

/** Whether a process with this id is running (signal 0 only checks). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string })?.code === "EPERM";
  }
}

/**
 * Takes the data directory for this process: `DIR/server.lock` holds its pid. Two servers on one
 * directory would both resume its batches and send their requests twice; a lock left by a
 * process that died (`kill -9`) is taken over.
 * @throws {ConfigError} when a running process holds it.
 */
function lockDir(root: string): void {
  fs.mkdirSync(root, { recursive: true });
  const lock = path.join(root, "server.lock");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lock, `${process.pid}\n`, { flag: "wx" });
      process.once("exit", () => {
        try {
          if (fs.readFileSync(lock, "utf8").trim() === String(process.pid)) fs.rmSync(lock);
        } catch {
          // already gone
        }
      });
      return;
    } catch (error) {
      if ((error as { code?: string })?.code !== "EEXIST") throw error;
      const pid = Number(fs.readFileSync(lock, "utf8").trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new ConfigError(
          `the data directory ${root} is in use by process ${pid} (${lock}); give each server its own --data-dir`,
        );
      }
      fs.rmSync(lock, { force: true });
    }
  }
  throw new ConfigError(`cannot lock the data directory ${root} (${lock})`);
}

/**
 * Opens the storage in `dir` (created when missing) and locks it for this process.
 * @param dir The data directory.
 * @throws {ConfigError} when another running process holds the directory.
 */
export function createFileStorage(dir: string): BatchStorage {
  const root = path.resolve(dir);
  lockDir(root);
  const at = (name: string) => {
    if (!NAME.test(name)) throw new TypeError(`invalid storage name '${name}'`);
    return path.join(root, name);
  };
  const ensure = () => fs.promises.mkdir(root, { recursive: true });
  return {
    location: root,
    async list() {
      try {
        return await fs.promises.readdir(root);
      } catch (error) {
        if (isMissing(error)) return [];
        throw error;
      }
    },
    async writeStream(name, bytes, maxBytes) {
      await ensure();
      const file = at(name);
      const handle = await fs.promises.open(file, "w");
      let total = 0;
      try {
        for await (const chunk of bytes) {
          total += chunk.byteLength;
          if (total > maxBytes) {
            throw new TooLargeError(`the file is larger than the limit of ${maxBytes} bytes`);
          }
          let off = 0;
          while (off < chunk.byteLength) {
            const { bytesWritten } = await handle.write(chunk, off, chunk.byteLength - off);
            off += bytesWritten;
          }
        }
        await handle.sync();
      } catch (error) {
        await handle.close();
        await fs.promises.rm(file, { force: true });
        throw error;
      }
      await handle.close();
      return total;
    },
    async readStream(name) {
      const file = at(name);
      try {
        await fs.promises.access(file);
      } catch {
        throw new NotFoundError(`no file '${name}'`);
      }
      return fileBytes(file);
    },
    async readText(name) {
      try {
        return await fs.promises.readFile(at(name), "utf8");
      } catch (error) {
        if (isMissing(error)) return undefined;
        throw error;
      }
    },
    async writeAtomic(name, text) {
      await ensure();
      const file = at(name);
      const tmp = `${file}.${crypto.randomUUID()}.tmp`;
      const handle = await fs.promises.open(tmp, "w");
      try {
        await handle.writeFile(text);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.promises.rename(tmp, file);
      await syncDir(root);
    },
    async rename(from, to) {
      await fs.promises.rename(at(from), at(to));
      await syncDir(root);
    },
    async size(name) {
      try {
        return (await fs.promises.stat(at(name))).size;
      } catch (error) {
        if (isMissing(error)) return undefined;
        throw error;
      }
    },
    async remove(name) {
      await fs.promises.rm(at(name), { force: true });
    },
    async openAppend(name) {
      await ensure();
      return new FileAppender(await fs.promises.open(at(name), "a"));
    },
    async repairTail(name) {
      await ensure();
      const file = at(name);
      await (await fs.promises.open(file, "a")).close();
      return cutUnfinishedLastLine(file);
    },
  };
}
