import type { WorldState } from '../world.ts';

/**
 * Growth without bound: a run that keeps asking (a keepalive sent again and
 * again instead of ending the session) adds to a queue of the world at each
 * round, so no state ever repeats, the search never ends, and the eventual
 * properties are never decided. Every queue of a scenario's world stays
 * short (messages in flight, replies awaited, chunks received); one longer
 * than the bound is taken for such a run.
 */

/** Over twice the longest queue of a shipped scenario (13 messages toward the appliance, in the stall scenario), short enough to stop early. */
export const QUEUE_BOUND = 32;

/** The longest array anywhere in the world outside its actor systems, by path, if it is longer than `bound`. */
export function overgrown(w: WorldState, bound = QUEUE_BOUND): { path: string; length: number } | undefined {
  let longest: { path: string; length: number } | undefined;
  // Paths are spelled only for an array over the bound: this runs on every new state.
  const walk = (value: unknown, path: () => string) => {
    if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value)) return;
    if (Array.isArray(value) && value.length > bound && value.length > (longest?.length ?? 0)) longest = { path: path(), length: value.length };
    const record = value as Record<string, unknown>;
    for (const key in record) walk(record[key], () => (path() ? `${path()}.${key}` : key));
  };
  for (const key in w) if (key !== 'systems') walk(w[key as keyof WorldState], () => key);
  return longest;
}
