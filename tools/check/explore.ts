import { stateKey } from './canonical.ts';
import { Model, type Overrides } from './model.ts';
import { properties, type Property } from './properties.ts';
import type { CheckReport, TraceStep } from './report.ts';
import type { Scenario } from './scenario.ts';
import { sequenceDiagram } from './trace.ts';
import type { WorldState } from './world.ts';

/**
 * The explicit-state search: breadth-first over every enabled step of the
 * composed model, each new state deduplicated by its canonical key and
 * checked against every safety property. A violation stops the search; BFS
 * makes its trace a shortest one. When the space is exhausted, the terminal
 * states are checked against the `eventually` properties, and every state
 * must be able to reach a terminal state where all of them hold (with a fair
 * scheduler, that is where every run ends).
 */

export interface ExploreOptions {
  overrides?: Overrides;
  /** Called with progress every 10,000 states expanded, for the command line. */
  progress?: (states: number, depth: number) => void;
}

/** Edges and parents live in typed arrays: a large scenario has millions of them. */
class IntList {
  data = new Int32Array(1 << 16);
  length = 0;
  push(value: number): void {
    if (this.length === this.data.length) {
      const grown = new Int32Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[this.length++] = value;
  }
}

export function explore(scenario: Scenario, options: ExploreOptions = {}): CheckReport {
  const started = performance.now();
  const model = new Model(scenario, options.overrides);
  const ids = new Map<string, number>();
  const parent = new IntList();
  const via: TraceStep[] = [];
  const depthOf = new IntList();
  const edgeFrom = new IntList();
  const edgeTo = new IntList();
  const good: number[] = [];
  /** Settled states where an outcome is missing, and which. */
  const unsettled = new Map<number, [Property, string]>();
  let transitions = 0;
  let depth = 0;
  let failure: Failure | undefined;

  const check = (world: WorldState, kind: Property['kind']): [Property, string] | undefined => {
    for (const property of properties) {
      if (property.kind !== kind) continue;
      const message = property.check(world, scenario);
      if (message) return [property, message];
    }
    return undefined;
  };
  const add = (world: WorldState, from: number, step: TraceStep, d: number): number => {
    const key = stateKey(world);
    const known = ids.get(key);
    if (known !== undefined) return known;
    const id = parent.length;
    ids.set(key, id);
    parent.push(from);
    via.push(step);
    depthOf.push(d);
    depth = Math.max(depth, d);
    const broken = check(world, 'safety');
    if (broken) failure ??= { property: broken[0].name, message: broken[1], state: id };
    return id;
  };

  const initial = model.initial();
  let frontier: Array<[number, WorldState]> = [[add(initial, -1, { from: '', to: '', label: '' }, 0), initial]];
  let truncated = false;
  search: while (frontier.length > 0 && !failure) {
    const next: Array<[number, WorldState]> = [];
    for (const [id, world] of frontier) {
      const steps = model.steps(world);
      // Settled: nothing left to happen but the clock (keepalives tick forever).
      if (steps.every((step) => step.kind === 'timer')) {
        const unmet = check(world, 'eventually');
        if (!unmet) good.push(id);
        else unsettled.set(id, unmet);
        // With nothing at all left to happen, the outcomes will never come.
        if (unmet && steps.length === 0 && (!failure || id < failure.state)) {
          const bound = model.exhausted(world);
          failure = { property: unmet[0].name, message: bound ? `${unmet[1]} when ${bound}` : unmet[1], state: id };
        }
      }
      for (const step of steps) {
        const { world: after, trace } = model.apply(world, step);
        transitions++;
        const before = parent.length;
        const to = add(after, id, trace, depthOf.data[id]! + 1);
        edgeFrom.push(id);
        edgeTo.push(to);
        if (failure) break search;
        if (to === before) next.push([to, after]);
        if (parent.length >= scenario.maxStates) {
          truncated = true;
          break search;
        }
      }
      if (options.progress && id % 10_000 === 0) options.progress(parent.length, depthOf.data[id]!);
    }
    frontier = next;
  }
  if (!failure && !truncated) failure = livelock(parent.length, good, edgeFrom, edgeTo, unsettled);

  const traceTo = (state: number) => {
    const steps: TraceStep[] = [];
    for (let s = state; s > 0; s = parent.data[s]!) steps.unshift(via[s]!);
    return steps;
  };
  const seconds = (performance.now() - started) / 1000;
  // A search stopped early (a violation, or the bound) has not proved what it did not finish.
  const complete = !failure && !truncated;
  return {
    scenario: scenario.name,
    states: parent.length,
    transitions,
    depth,
    seconds,
    statesPerSecond: Math.round(parent.length / seconds),
    truncated,
    properties: properties.map((p) => {
      if (failure?.property === p.name) return { name: p.name, description: p.description, held: false, checked: true, message: failure.message };
      return { name: p.name, description: p.description, held: true, checked: complete || (p.kind === 'safety' && !failure) };
    }),
    counterexample: failure && sequenceDiagram(failure.property, failure.message, traceTo(failure.state)),
    at: new Date().toISOString(),
  };
}

interface Failure {
  property: string;
  message: string;
  state: number;
}

/**
 * Every state must be able to reach a good settled state: a backward search
 * from those over the explored edges. A settled state that cannot, with the
 * outcome it misses, is the counterexample (the shallowest one); failing
 * that, the first state that cannot (a livelock).
 */
function livelock(states: number, good: number[], edgeFrom: IntList, edgeTo: IntList, unsettled: Map<number, [Property, string]>): Failure | undefined {
  const start = new Int32Array(states + 1);
  for (let e = 0; e < edgeTo.length; e++) start[edgeTo.data[e]! + 1]!++;
  for (let s = 0; s < states; s++) start[s + 1]! += start[s]!;
  const preds = new Int32Array(edgeTo.length);
  const fill = start.slice();
  for (let e = 0; e < edgeTo.length; e++) preds[fill[edgeTo.data[e]!]!++] = edgeFrom.data[e]!;
  const reaches = new Uint8Array(states);
  const stack = [...good];
  for (const s of good) reaches[s] = 1;
  while (stack.length > 0) {
    const s = stack.pop()!;
    for (let k = start[s]!; k < start[s + 1]!; k++) {
      const p = preds[k]!;
      if (reaches[p]) continue;
      reaches[p] = 1;
      stack.push(p);
    }
  }
  const stuck = reaches.indexOf(0);
  if (stuck === -1) return undefined;
  const missing = [...unsettled].filter(([s]) => !reaches[s]).sort(([a], [b]) => a - b)[0];
  if (missing) return { property: missing[1][0].name, message: `${missing[1][1]}, and no run from here ever settles it`, state: missing[0] };
  return { property: 'progress', message: 'from this state no run settles with every attach ended or attached and every status delivered: a livelock', state: stuck };
}
