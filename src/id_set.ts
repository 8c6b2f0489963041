/**
 * A compact set of item ids for duplicate detection and resume. It keeps a 53-bit fingerprint
 * and a line number per id (about 24 bytes at the worst load) instead of the strings, so ten
 * million ids fit in a few hundred MB at most and one million in about 24 MB.
 * @module
 */

/** cyrb53: a fast 53-bit string hash; collisions at 10^7 ids are vanishingly rare (~10^-2). */
function fingerprint(text: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  const h = 4294967296 * (2097151 & h2) + (h1 >>> 0);
  return h === 0 ? 1 : h; // 0 marks an empty slot
}

/**
 * A set of id strings with the line each was first seen on.
 *
 * @example
 * ```ts
 * import { IdSet } from "./id_set.ts";
 * const ids = new IdSet();
 * ids.add("a", 1); // 0: new
 * ids.add("a", 7); // 1: seen first on line 1
 * ```
 */
export class IdSet {
  #keys: Float64Array;
  #lines: Uint32Array;
  #size = 0;

  constructor(capacity = 1024) {
    let cap = 16;
    while (cap < capacity * 2) cap *= 2;
    this.#keys = new Float64Array(cap);
    this.#lines = new Uint32Array(cap);
  }

  /** Number of distinct ids. */
  get size(): number {
    return this.#size;
  }

  /** True if `id` was added. */
  has(id: string): boolean {
    return this.#keys[this.#slot(fingerprint(id))] !== 0;
  }

  /** Adds `id`, first seen on `line`. Returns 0 if it is new, else the line it was first added with. */
  add(id: string, line = 0): number {
    const key = fingerprint(id);
    const slot = this.#slot(key);
    if (this.#keys[slot] !== 0) return this.#lines[slot] || 1;
    this.#keys[slot] = key;
    this.#lines[slot] = line;
    if (++this.#size * 2 > this.#keys.length) this.#grow();
    return 0;
  }

  #slot(key: number): number {
    const mask = this.#keys.length - 1;
    let i = key % this.#keys.length & mask;
    while (this.#keys[i] !== 0 && this.#keys[i] !== key) i = (i + 1) & mask;
    return i;
  }

  #grow(): void {
    const keys = this.#keys;
    const lines = this.#lines;
    this.#keys = new Float64Array(keys.length * 2);
    this.#lines = new Uint32Array(keys.length * 2);
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] !== 0) {
        const slot = this.#slot(keys[i]);
        this.#keys[slot] = keys[i];
        this.#lines[slot] = lines[i];
      }
    }
  }
}
