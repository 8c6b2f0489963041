/**
 * The provider-batch job of one Batch API batch (`serve --mode batch`), kept in the Batch API's
 * storage: `<batch>.job.json`, `<batch>.part.<name>.jsonl`, `<batch>.job.cancel`.
 * @module
 */
import { parseJob } from "../../batch/job.ts";
import type { JobStore, PartWriter } from "../../batch/store.ts";
import { TextLineStream } from "../../text_line_stream.ts";
import type { BatchStorage } from "./storage.ts";

/**
 * A {@linkcode JobStore} for the batch `batchId` in `storage`.
 * @example
 * ```ts ignore
 * const store = storageJobStore(storage, "batch_abc");
 * await store.load(); // undefined before the first save
 * ```
 */
export function storageJobStore(storage: BatchStorage, batchId: string): JobStore {
  const jobName = `${batchId}.job.json`;
  const cancelName = `${batchId}.job.cancel`;
  const partPrefix = `${batchId}.part.`;
  const part = (name: string) => `${partPrefix}${name}.jsonl`;
  return {
    async load() {
      const text = await storage.readText(jobName);
      return text === undefined ? undefined : parseJob(JSON.parse(text));
    },
    save: (job) => storage.writeAtomic(jobName, JSON.stringify(job)),
    createPart(name): PartWriter {
      const opening = storage.remove(part(name)).then(() => storage.openAppend(part(name)));
      let buffer: string[] = [];
      let size = 0;
      const flush = async () => {
        if (buffer.length === 0) return;
        const text = buffer.join("");
        buffer = [];
        size = 0;
        await (await opening).append(text);
      };
      return {
        async write(line) {
          buffer.push(line + "\n");
          size += line.length;
          if (size > 1 << 20) await flush();
        },
        async close() {
          await flush();
          await (await opening).close();
        },
      };
    },
    async *readPart(name) {
      const lines = (await storage.readStream(part(name)))
        .pipeThrough(new TextDecoderStream())
        .pipeThrough(new TextLineStream());
      for await (const line of lines) yield line;
    },
    async removeParts() {
      for (const name of await storage.list()) {
        if (name.startsWith(partPrefix)) await storage.remove(name);
      }
    },
    async cancelRequested() {
      return (await storage.size(cancelName)) !== undefined;
    },
    requestCancel: () => storage.writeAtomic(cancelName, new Date().toISOString() + "\n"),
    clearCancel: () => storage.remove(cancelName),
  };
}
