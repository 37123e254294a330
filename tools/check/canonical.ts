import { createHash } from 'node:crypto';
import type { SystemState } from './runtime.ts';
import type { WorldState } from './world.ts';

/**
 * The identity of an explored state: a canonical serialization of the world
 * (object keys sorted, bytes as hex, the clock made relative: only how far
 * each timer is from now matters), hashed. A system state is immutable and
 * shared by every world that did not touch it, so its serialization is
 * computed once.
 */

const systemText = new WeakMap<SystemState, string>();

export function stateKey(w: WorldState): string {
  const parts: string[] = [];
  for (const name of Object.keys(w.systems).sort()) {
    const state = w.systems[name]!;
    let text = systemText.get(state);
    if (text === undefined) {
      text = canonical(state.snapshot);
      systemText.set(state, text);
    }
    const timers = state.timers.map((t) => `${t.source}#${t.id}@${t.due - w.now}`).join(',');
    parts.push(`${name}=${text}|${timers}`);
  }
  const { systems: _, now, attaches, ...rest } = w;
  // A lookup's deadline, like a timer, counts from now.
  const relative = attaches.map((a) => (a.lookupDue === undefined ? a : { ...a, lookupDue: a.lookupDue - now }));
  parts.push(canonical({ ...rest, attaches: relative }));
  return createHash('sha1').update(parts.join('\n')).digest('base64').slice(0, 16);
}

/**
 * Texts of objects already serialized. Snapshots, contexts and simulation
 * states are immutable and shared between states (a restored actor keeps the
 * context objects it was restored from until it assigns new ones), so most of
 * a persisted system is text already known.
 */
const known = new WeakMap<object, string>();

/** JSON-like text with sorted keys; undefined fields left out; bytes as hex. */
export function canonical(value: unknown): string {
  if (typeof value !== 'object' || value === null) return scalar(value);
  let text = known.get(value);
  if (text === undefined) {
    text = serialize(value);
    known.set(value, text);
  }
  return text;
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
