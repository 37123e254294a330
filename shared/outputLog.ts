/**
 * A session's output log in memory: every byte the session wrote (stdout and
 * stderr, interleaved in the order they were read), addressed by absolute
 * offset, so a reader (an attach replaying logs, a channel resuming after a
 * reconnect) can continue from any offset it has seen. Bounded: when over
 * capacity the oldest bytes go (end - start never exceeds capacity), and a
 * reader that asks for them is told how many it missed. The guest's outputLog
 * actor keeps the recent tail of each session's files in one, and all of the
 * log when the files cannot be written (actors/outputLog.ts).
 *
 * Appended chunks are kept by reference and reads return subarray views, so
 * a byte is copied at most once on its way from the process to a channel;
 * callers must not mutate a chunk after appending it.
 */

export type OutputStream = 'stdout' | 'stderr';

export interface OutputRecord {
  stream: OutputStream;
  data: Uint8Array;
  /** Absolute offset of data[0]. */
  offset: number;
}

export interface OutputRead {
  /** Bytes between the requested offset and `start` that were dropped for capacity. */
  skipped: number;
  records: OutputRecord[];
}

export class OutputLog {
  #capacity: number;
  /** Retained records, oldest first; records before `#head` are dropped and await compaction. */
  #records: OutputRecord[] = [];
  #head = 0;
  #start = 0;
  #end = 0;

  constructor(capacity: number) {
    this.#capacity = checkedCapacity(capacity);
  }

  get capacity(): number {
    return this.#capacity;
  }

  /** Keeps up to `capacity` bytes from now on; a smaller one drops the oldest bytes at once. */
  setCapacity(capacity: number): void {
    this.#capacity = checkedCapacity(capacity);
    if (this.#end - this.#start > capacity) this.#trim(this.#end - capacity);
  }

  /** Oldest retained offset. */
  get start(): number {
    return this.#start;
  }

  /** Offset one past the newest byte: the total number of bytes ever appended. */
  get end(): number {
    return this.#end;
  }

  append(stream: OutputStream, data: Uint8Array): void {
    if (data.length === 0) return;
    this.#records.push({ stream, data, offset: this.#end });
    this.#end += data.length;
    if (this.#end - this.#start > this.#capacity) this.#trim(this.#end - this.#capacity);
  }

  /**
   * Records covering [from, from + maxBytes), clipped to what is retained.
   * `from` before `start` reads from `start` and reports the gap as `skipped`;
   * `from` at or past `end` reads nothing.
   */
  read(from: number, maxBytes: number): OutputRead {
    const skipped = Math.max(0, this.#start - from);
    const records: OutputRecord[] = [];
    let at = from + skipped;
    let budget = maxBytes;
    for (let i = this.#find(at); i < this.#records.length && budget > 0; i++) {
      const r = this.#records[i]!;
      const lo = at - r.offset;
      const hi = Math.min(r.data.length, lo + budget);
      records.push({ stream: r.stream, data: lo === 0 && hi === r.data.length ? r.data : r.data.subarray(lo, hi), offset: at });
      budget -= hi - lo;
      at += hi - lo;
    }
    return { skipped, records };
  }

  /**
   * Moves `start` to `newStart` and drops the records wholly before it. A
   * record straddling `newStart` stays whole (reads begin inside it, and a
   * view of its tail would pin the same memory anyway).
   */
  #trim(newStart: number): void {
    while (this.#head < this.#records.length) {
      const r = this.#records[this.#head]!;
      if (r.offset + r.data.length > newStart) break;
      this.#head++;
    }
    this.#start = newStart;
    // Compact only when the dead prefix dominates, so trimming stays amortised O(1).
    if (this.#head > 64 && this.#head * 2 > this.#records.length) {
      this.#records = this.#records.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Index of the retained record holding offset `at` (binary search); length when none. */
  #find(at: number): number {
    let lo = this.#head;
    let hi = this.#records.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const r = this.#records[mid]!;
      if (r.offset + r.data.length <= at) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

function checkedCapacity(capacity: number): number {
  if (!Number.isSafeInteger(capacity) || capacity <= 0) throw new RangeError(`output log capacity must be a positive integer, got ${capacity}`);
  return capacity;
}
