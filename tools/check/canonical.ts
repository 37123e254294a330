import type { WorldState } from './world.ts';

/**
 * The identity of an explored state: a 64-bit digest of the world's canonical
 * form (the world's records by key, bytes by value, the clock made relative:
 * only how far each timer and deadline is from now matters), as 16 hex digits.
 */
export function stateKey(w: WorldState): string {
  const key = new Lanes(TAG.world);
  for (const name of Object.keys(w.systems).sort()) {
    const state = w.systems[name]!;
    key.digest(scalar(name));
    key.digest(canonical(state.snapshot));
    key.word(state.timers.length);
    for (const t of state.timers) {
      key.digest(scalar(t.source));
      key.digest(scalar(t.id));
      key.digest(scalar(t.due - w.now));
    }
  }
  const { systems: _, now, attaches, stopDue, mail, lines, unblocked, violations, ...rest } = w;
  const relative = attaches.map((a) => (a.lookupDue === undefined ? a : { ...a, lookupDue: a.lookupDue - now }));
  // A stop deadline long past is only past: counting down forever would make every keepalive after it a new state.
  const stops = byKey(stopDue, (due) => byKey(due, (at) => Math.max(at - now, -1)));
  // The world's own records are looked up by key, never walked in order: the order they filled in is no part of the state.
  const wires = byKey(lines, (line) => (line.connection ? { ...line, connection: { ...line.connection, channels: byKey(line.connection.channels, (s) => s) } } : line));
  key.digest(canonical({ ...rest, attaches: relative, stopDue: stops, mail: byKey(mail, (m) => m), lines: wires, unblocked: byKey(unblocked, (u) => byKey(u, (x) => x)), violations: byKey(violations, (v) => v) }));
  return key.hex();
}

/** A record with its keys sorted, each value mapped. */
function byKey<T, U>(record: Record<string, T>, map: (value: T) => U): Record<string, U> {
  return Object.fromEntries(
    Object.keys(record)
      .sort()
      .map((k) => [k, map(record[k]!)]),
  );
}

/**
 * Digests of objects already seen. Snapshots, contexts and simulation states
 * are immutable and shared between states (a restored actor keeps the context
 * objects it was restored from until it assigns new ones), so most of a
 * persisted system has a digest already. An object's digest hashes its keys
 * and its children's digests, never their whole text, so a step costs in
 * proportion to what it changed. A digest is a number of 53 bits (a double
 * holds it exactly), built from numbers: no text is assembled, no keys
 * sorted: an object's entries are hashed in their order, which is part of
 * its behaviour (a machine that iterates its context's objects acts in it).
 */
// Kept on the object itself, under a symbol no serializer sees: a WeakMap of
// millions of entries makes V8's full collections crawl (each entry is an
// ephemeron the collector must revisit).
const DIGEST = Symbol('canonical digest');
type Digested = { [DIGEST]?: number };

/** A canonical digest: equal for equal data (object keys in the same order, undefined fields left out, bytes by value). */
export function canonical(value: unknown): number {
  if (typeof value !== 'object' || value === null) return scalar(value);
  const known = (value as Digested)[DIGEST];
  if (known !== undefined) return known;
  const digest = compound(value);
  if (Object.isExtensible(value)) Object.defineProperty(value, DIGEST, { value: digest });
  return digest;
}

const WORD = 2 ** 32;
const TAG = { null: 1, undefined: 2, true: 3, false: 4, number: 5, string: 6, bytes: 7, array: 8, error: 9, object: 10, world: 12 } as const;

/**
 * Two independent 32-bit multiplicative hashes over 32-bit words (not
 * cryptographic: the inputs are the checker's own), mixed and packed into
 * 53 bits at the end. At a million distinct objects the chance that two
 * share a digest is about one in ten thousand million.
 */
class Lanes {
  a: number;
  b: number;
  constructor(tag: number) {
    this.a = Math.imul(0x811c9dc5 ^ tag, 0x01000193);
    this.b = Math.imul(0x9e3779b9 ^ tag, 0x5bd1e995);
  }
  word(x: number): void {
    this.a = Math.imul(this.a ^ x, 0x01000193);
    this.b = Math.imul(this.b ^ x, 0x5bd1e995);
    this.b ^= this.b >>> 15;
  }
  digest(d: number): void {
    this.word(d >>> 0);
    this.word(Math.floor(d / WORD));
  }
  done(): number {
    const [a, b] = this.#mixed();
    return (a & 0x1fffff) * WORD + b;
  }
  /** All 64 bits, as 16 hex digits. */
  hex(): string {
    const [a, b] = this.#mixed();
    return a.toString(16).padStart(8, '0') + b.toString(16).padStart(8, '0');
  }
  #mixed(): [number, number] {
    const a = fmix(this.a ^ Math.imul(this.b, 0x27d4eb2f));
    const b = fmix(this.b ^ Math.imul(a, 0x165667b1));
    return [a >>> 0, b >>> 0];
  }
}

function fmix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** Strings recur (keys, labels, IDs): their digests are kept, up to a bound. */
const strings = new Map<string, number>();
const numberBits = new Float64Array(1);
const numberWords = new Uint32Array(numberBits.buffer);

function scalar(value: unknown): number {
  switch (typeof value) {
    case 'string': {
      const known = strings.get(value);
      if (known !== undefined) return known;
      const lanes = new Lanes(TAG.string);
      for (let i = 0; i < value.length; i++) lanes.word(value.charCodeAt(i));
      const digest = lanes.done();
      if (strings.size >= 1 << 18) strings.clear();
      strings.set(value, digest);
      return digest;
    }
    case 'number': {
      const lanes = new Lanes(TAG.number);
      numberBits[0] = value;
      lanes.word(numberWords[0]!);
      lanes.word(numberWords[1]!);
      return lanes.done();
    }
    case 'boolean':
      return value ? TAG.true : TAG.false;
    case 'undefined':
      return TAG.undefined;
    default:
      return value === null ? TAG.null : scalar(String(value));
  }
}

function compound(value: object): number {
  if (value instanceof Uint8Array) {
    const lanes = new Lanes(TAG.bytes);
    lanes.word(value.length);
    for (let i = 0; i < value.length; i++) lanes.word(value[i]!);
    return lanes.done();
  }
  if (Array.isArray(value)) {
    const lanes = new Lanes(TAG.array);
    lanes.word(value.length);
    for (const item of value) lanes.digest(canonical(item));
    return lanes.done();
  }
  if (value instanceof Error) {
    const lanes = new Lanes(TAG.error);
    lanes.digest(scalar(value.message));
    return lanes.done();
  }
  // Entries in their order: machines iterate their contexts' objects, so the same entries in another order can act otherwise.
  const lanes = new Lanes(TAG.object);
  const record = value as Record<string, unknown>;
  for (const key in record) {
    if (!Object.prototype.hasOwnProperty.call(record, key)) continue;
    const child = record[key];
    if (child === undefined) continue;
    lanes.digest(scalar(key));
    lanes.digest(canonical(child));
  }
  return lanes.done();
}
