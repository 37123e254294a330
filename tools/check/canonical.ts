import { createHash } from 'node:crypto';
import type { WorldState } from './world.ts';

/**
 * The identity of an explored state: a digest of the world's canonical form
 * (object keys sorted, bytes by value, the clock made relative: only how far
 * each timer and deadline is from now matters).
 */
export function stateKey(w: WorldState): string {
  const parts: string[] = [];
  for (const name of Object.keys(w.systems).sort()) {
    const state = w.systems[name]!;
    const timers = state.timers.map((t) => `${t.source}#${t.id}@${t.due - w.now}`).join(',');
    parts.push(`${name}=${canonical(state.snapshot)}|${timers}`);
  }
  const { systems: _, now, attaches, ...rest } = w;
  const relative = attaches.map((a) => (a.lookupDue === undefined ? a : { ...a, lookupDue: a.lookupDue - now }));
  parts.push(canonical({ ...rest, attaches: relative }));
  return createHash('sha1').update(parts.join('\n')).digest('base64').slice(0, 16);
}

/**
 * Digests of objects already seen. Snapshots, contexts and simulation states
 * are immutable and shared between states (a restored actor keeps the context
 * objects it was restored from until it assigns new ones), so most of a
 * persisted system has a digest already. An object's digest hashes its keys
 * and its children's digests, never their whole text, so a step costs in
 * proportion to what it changed.
 */
// Kept on the object itself, under a symbol no serializer sees: a WeakMap of
// millions of entries makes V8's full collections crawl (each entry is an
// ephemeron the collector must revisit).
const DIGEST = Symbol('canonical digest');
type Digested = { [DIGEST]?: string };

/** A canonical digest: equal for equal data (object keys sorted, undefined fields left out, bytes by value). */
export function canonical(value: unknown): string {
  if (typeof value !== 'object' || value === null) return scalar(value);
  const known = (value as Digested)[DIGEST];
  if (known !== undefined) return known;
  const digest = hash(serialize(value));
  if (Object.isExtensible(value)) Object.defineProperty(value, DIGEST, { value: digest });
  return digest;
}

function scalar(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'undefined':
      return 'u';
    case 'string':
      return JSON.stringify(value);
    default:
      return String(value);
  }
}

function serialize(value: object): string {
  if (value instanceof Uint8Array) return `#${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}`;
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value instanceof Error) return `!${JSON.stringify(value.message)}`;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record)
    .filter((k) => record[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(record[k])}`).join(',')}}`;
}

/**
 * 64 bits of a string, as two independent 32-bit multiplicative hashes (not
 * cryptographic: the inputs are the checker's own). At a million states the
 * chance that two distinct ones collide is about one in ten million.
 */
function hash(text: string): string {
  let a = 0x811c9dc5;
  let b = 0x9e3779b9;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  a = Math.imul(a ^ (a >>> 16), 0x85ebca6b) ^ Math.imul(b ^ (b >>> 13), 0xc2b2ae35);
  b = Math.imul(b ^ (b >>> 16), 0x85ebca6b) ^ Math.imul(a ^ (a >>> 13), 0xc2b2ae35);
  return (a >>> 0).toString(36) + '.' + (b >>> 0).toString(36);
}
