/**
 * The visited set, TLC-style: each explored state is kept as a 64-bit
 * fingerprint of its canonical key and the number the search gave it, in an
 * open-addressed table of typed arrays (12 bytes a slot, at most half of
 * them full). A million states take 24 to 48 MiB, where a Map of key
 * strings took about ten times that and kept V8's collector busy. Two distinct states
 * collide with a chance of about n²/2⁶⁵: one in forty million at a million.
 */

/** A fingerprint as two 32-bit halves. */
export type Fingerprint = readonly [number, number];

/** The fingerprint of a canonical state key (stateKey's 16 hex digits). */
export function fingerprintOf(key: string): Fingerprint {
  return [Number.parseInt(key.slice(0, 8), 16), Number.parseInt(key.slice(8), 16)];
}

export class FingerprintSet {
  #hi = new Uint32Array(1 << 16);
  #lo = new Uint32Array(1 << 16);
  /** The state's number plus one; 0 marks an empty slot. */
  #ids = new Int32Array(1 << 16);
  size = 0;

  /** The number of the state with fingerprint `fp`, or undefined. */
  get(fp: Fingerprint): number | undefined {
    const slot = this.#find(fp[0], fp[1]);
    return this.#ids[slot] === 0 ? undefined : this.#ids[slot]! - 1;
  }

  /** Records `fp` as state `id` unless it is there; returns the number it has. */
  add(fp: Fingerprint, id: number): number {
    const slot = this.#find(fp[0], fp[1]);
    if (this.#ids[slot] !== 0) return this.#ids[slot]! - 1;
    this.#hi[slot] = fp[0];
    this.#lo[slot] = fp[1];
    this.#ids[slot] = id + 1;
    if (++this.size * 2 > this.#ids.length) this.#grow();
    return id;
  }

  #find(hi: number, lo: number): number {
    const mask = this.#ids.length - 1;
    let slot = (lo ^ Math.imul(hi, 0x9e3779b1)) & mask;
    while (this.#ids[slot] !== 0 && (this.#hi[slot] !== hi || this.#lo[slot] !== lo)) slot = (slot + 1) & mask;
    return slot;
  }

  #grow(): void {
    const [hi, lo, ids] = [this.#hi, this.#lo, this.#ids];
    this.#hi = new Uint32Array(hi.length * 2);
    this.#lo = new Uint32Array(lo.length * 2);
    this.#ids = new Int32Array(ids.length * 2);
    for (let s = 0; s < ids.length; s++) {
      if (ids[s] === 0) continue;
      const slot = this.#find(hi[s]!, lo[s]!);
      this.#hi[slot] = hi[s]!;
      this.#lo[slot] = lo[s]!;
      this.#ids[slot] = ids[s]!;
    }
  }
}
