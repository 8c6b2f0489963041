/**
 * An exact, compact set of item ids for duplicate detection and resume. The ids themselves are
 * kept, as UTF-8 bytes packed one after another in 1 MiB chunks, and an open-addressing table
 * holds each id's place in them and a line number: 8 bytes a slot plus the id's bytes and one
 * length byte, with no object per id. A lookup compares bytes, so no two ids are ever taken for
 * one another (a hash alone would, now and then, skip a line that was never answered).
 * @module
 */

const CHUNK_BITS = 20;
const CHUNK = 1 << CHUNK_BITS; // 1 MiB
/** Offsets are stored +1 in a Uint32Array (0 marks an empty slot): at most 4095 chunks. */
const MAX_CHUNKS = Math.floor(0xffff_ffff / CHUNK);

const LINE_MASK = 0x3fff_ffff;
/** Added as already answered (resume), not yet read in this input. */
const ANSWERED = 0x4000_0000;
/** Read in this input (or added the plain way). */
const VISITED = 0x8000_0000;

const encoder = new TextEncoder();

/** Options for {@linkcode IdSet.add}. */
export interface IdSetAddOptions {
  /**
   * The id is answered already (read from an output file for a resume): {@linkcode IdSet.visit}
   * then reports it as skipped the first time the input has it, not as a duplicate.
   * @default false
   */
  answered?: boolean;
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
  /** Per slot: the id's offset in the chunks, +1; 0 is empty. */
  #offsets: Uint32Array;
  /** Per slot: the line (30 bits) and the ANSWERED / VISITED flags. */
  #lines: Uint32Array;
  #chunks: Uint8Array[] = [];
  /** Bytes used in the last chunk. */
  #used = CHUNK;
  #size = 0;
  /** The id being looked up, as UTF-8. */
  #scratch = new Uint8Array(256);
  #length = 0;

  /** @param capacity Ids to make room for up front (the table grows as needed). */
  constructor(capacity = 1024) {
    let cap = 16;
    while (cap * 0.75 < capacity) cap *= 2;
    this.#offsets = new Uint32Array(cap);
    this.#lines = new Uint32Array(cap);
  }

  /** Number of distinct ids. */
  get size(): number {
    return this.#size;
  }

  /** Bytes held: the table and the chunks of id bytes. */
  get byteLength(): number {
    return this.#offsets.byteLength + this.#lines.byteLength +
      this.#chunks.reduce((n, c) => n + c.byteLength, 0);
  }

  /** True if `id` was added. */
  has(id: string): boolean {
    return this.#offsets[this.#find(this.#encode(id))] !== 0;
  }

  /** True if `id` was added as answered (`add(id, line, { answered: true })`). */
  answered(id: string): boolean {
    const slot = this.#find(this.#encode(id));
    return this.#offsets[slot] !== 0 && (this.#lines[slot] & ANSWERED) !== 0;
  }

  /**
   * Adds `id`, first seen on `line`.
   * @returns 0 if it is new, else the line it was first added with (1 when that was 0).
   */
  add(id: string, line = 0, options: IdSetAddOptions = {}): number {
    const slot = this.#find(this.#encode(id));
    if (this.#offsets[slot] !== 0) return (this.#lines[slot] & LINE_MASK) || 1;
    this.#insert(slot, (line & LINE_MASK) | (options.answered ? ANSWERED : VISITED));
    return 0;
  }

  /**
   * Marks `id` as read from the input on `line`: the duplicate check and the resume skip in one
   * lookup.
   * @returns 0 if it is new (now added), -1 if it was added as answered and this is its first
   *   time in the input (skip it), else the line it was first read on (a duplicate; 1 when that
   *   was 0).
   */
  visit(id: string, line: number): number {
    const slot = this.#find(this.#encode(id));
    if (this.#offsets[slot] === 0) {
      this.#insert(slot, (line & LINE_MASK) | VISITED);
      return 0;
    }
    const flags = this.#lines[slot];
    if ((flags & ANSWERED) !== 0 && (flags & VISITED) === 0) {
      this.#lines[slot] = ANSWERED | VISITED | (line & LINE_MASK);
      return -1;
    }
    return (flags & LINE_MASK) || 1;
  }

  /** Puts `id` as UTF-8 in the scratch buffer; returns its hash. */
  #encode(id: string): number {
    let scratch = this.#scratch;
    if (scratch.length < id.length * 3) {
      scratch = this.#scratch = new Uint8Array(id.length * 3 + 16);
    }
    let n = 0;
    let ascii = true;
    for (; n < id.length; n++) {
      const c = id.charCodeAt(n);
      if (c >= 128) {
        ascii = false;
        break;
      }
      scratch[n] = c;
    }
    if (!ascii) n = encoder.encodeInto(id, scratch).written;
    this.#length = n;
    return hashBytes(scratch, 0, n);
  }

  /** The slot holding the scratch id, or the empty slot where it would go. */
  #find(hash: number): number {
    const offsets = this.#offsets;
    const mask = offsets.length - 1;
    let i = hash & mask;
    while (offsets[i] !== 0 && !this.#equals(offsets[i] - 1)) i = (i + 1) & mask;
    return i;
  }

  /** True if the id stored at `offset` is the scratch id. */
  #equals(offset: number): boolean {
    const chunk = this.#chunks[offset >>> CHUNK_BITS];
    let at = offset & (CHUNK - 1);
    const length = readLength(chunk, at);
    if (length !== this.#length) return false;
    at += lengthSkip;
    const scratch = this.#scratch;
    for (let k = 0; k < length; k++) if (chunk[at + k] !== scratch[k]) return false;
    return true;
  }

  #insert(slot: number, line: number): void {
    const length = this.#length;
    const need = length + lengthBytes(length);
    let chunk = this.#chunks.at(-1);
    if (chunk === undefined || this.#used + need > chunk.length) {
      if (this.#chunks.length >= MAX_CHUNKS) {
        throw new RangeError(
          `Cannot add to the id set: its ids take more than ${MAX_CHUNKS} MiB`,
        );
      }
      chunk = new Uint8Array(Math.max(CHUNK, need)); // an id over 1 MiB gets a chunk of its own
      this.#chunks.push(chunk);
      this.#used = 0;
    }
    const offset = (this.#chunks.length - 1) * CHUNK + this.#used;
    let at = writeLength(chunk, this.#used, length);
    chunk.set(this.#scratch.subarray(0, length), at);
    at += length;
    this.#used = at;
    this.#offsets[slot] = offset + 1;
    this.#lines[slot] = line;
    if (++this.#size > this.#offsets.length * 0.75) this.#grow();
  }

  #grow(): void {
    const offsets = this.#offsets;
    const lines = this.#lines;
    this.#offsets = new Uint32Array(offsets.length * 2);
    this.#lines = new Uint32Array(offsets.length * 2);
    const mask = this.#offsets.length - 1;
    for (let s = 0; s < offsets.length; s++) {
      if (offsets[s] === 0) continue;
      const offset = offsets[s] - 1;
      const chunk = this.#chunks[offset >>> CHUNK_BITS];
      const at = offset & (CHUNK - 1);
      const length = readLength(chunk, at);
      // Ids are distinct: the first empty slot is the place.
      let i = hashBytes(chunk, at + lengthSkip, length) & mask;
      while (this.#offsets[i] !== 0) i = (i + 1) & mask;
      this.#offsets[i] = offsets[s];
      this.#lines[i] = lines[s];
    }
  }
}

/** FNV-1a over bytes, then murmur3's finaliser so the low bits (the table index) mix well. */
function hashBytes(bytes: Uint8Array, start: number, length: number): number {
  let h = 0x811c9dc5;
  for (let k = start; k < start + length; k++) h = Math.imul(h ^ bytes[k], 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Bytes a length takes as a varint (7 bits a byte). */
function lengthBytes(length: number): number {
  let n = 1;
  while (length >= 128) {
    length = Math.floor(length / 128);
    n++;
  }
  return n;
}

function writeLength(chunk: Uint8Array, at: number, length: number): number {
  while (length >= 128) {
    chunk[at++] = (length & 127) | 128;
    length = Math.floor(length / 128);
  }
  chunk[at++] = length;
  return at;
}

/** Bytes the last {@linkcode readLength} read (no tuple: this runs on every probe). */
let lengthSkip = 1;

/** The varint length at `at`; sets `lengthSkip` to how many bytes it took. */
function readLength(chunk: Uint8Array, at: number): number {
  const first = chunk[at];
  if (first < 128) {
    lengthSkip = 1;
    return first;
  }
  let length = 0;
  let scale = 1;
  let n = 0;
  while (true) {
    const b = chunk[at + n++];
    length += (b & 127) * scale;
    if (b < 128) {
      lengthSkip = n;
      return length;
    }
    scale *= 128;
  }
}
