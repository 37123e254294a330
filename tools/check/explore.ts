import { Model, type Overrides } from './model.ts';
import { properties } from './properties.ts';
import type { CheckReport, TraceStep } from './report.ts';
import type { Scenario } from './scenario.ts';
import type { Batch, Broken, Request } from './search/expand.ts';
import { FingerprintSet } from './search/fingerprints.ts';
import { Graph } from './search/graph.ts';
import { doomed, unmetEverywhere, type SettledInfo } from './search/liveness.ts';
import { startOwners, type Owner } from './search/owners.ts';
import { sequenceDiagram } from './trace.ts';

/**
 * The explicit-state search: breadth-first over every enabled step of the
 * composed model, each new state deduplicated by a 64-bit fingerprint of its
 * canonical key and checked against every safety property. A violation stops
 * the search; BFS makes its trace a shortest one. Then the eventual
 * properties are decided on the explored graph (search/liveness.ts): every
 * run must end where they all hold. A search cut at the scenario's bound
 * still finds the runs that end badly inside what it explored.
 *
 * The states of a layer are expanded by several expanders at once
 * (search/owners.ts: this thread and a worker per further core), a window
 * of states at a time; this thread numbers what they found in the order a
 * single expander would have, so the report is the same with any number
 * of threads. Only fingerprints, parents and edges are kept here: a trace
 * is rebuilt by taking its steps again from the initial state.
 */

export interface ExploreOptions {
  overrides?: Overrides;
  /** Called with progress after each window of states expanded, for the command line. */
  progress?: (states: number, depth: number) => void;
  /** Threads that expand states (this one and workers); by default one per core. */
  threads?: number;
  /**
   * The size of layer from which workers start, and take states once they
   * have loaded (by default 1,024: a space whose layers are all smaller
   * takes seconds, about what a worker takes to load); 0 starts them at
   * once and waits for them to load.
   */
  workersFrom?: number;
}

/** States of a layer expanded between two numberings: enough to keep every thread busy, few enough to hold their successors. */
const WINDOW = 2048;
/** Fewer states than this (or an eighth of the layer that starts the workers) are not worth handing from one expander to another. */
const HANDOVER = 128;

interface Failure {
  property: string;
  message: string;
  state: number;
  /** For a livelock: the steps round its cycle after `state`. */
  cycle?: number[];
}

export function explore(scenario: Scenario, options: ExploreOptions = {}): CheckReport {
  const started = performance.now();
  const owners = startOwners(scenario, options.overrides, options.threads);
  if (options.workersFrom === 0) for (const owner of owners) owner.waitReady();
  try {
    return search(scenario, options, owners, started);
  } finally {
    for (const owner of owners) owner.close();
  }
}

function search(scenario: Scenario, options: ExploreOptions, owners: ReturnType<typeof startOwners>, started: number): CheckReport {
  const graph = new Graph();
  const visited = new FingerprintSet();
  const settled = new Map<number, SettledInfo>();
  let failure: Failure | undefined;
  let truncated = false;
  /** A state where nothing at all can happen and an outcome is missing: the search ends with its layer. */
  let deadEnd = false;
  const workersFrom = options.workersFrom ?? 1024;

  // Which owners take part, and how many states each holds in the next layer.
  const active: Owner[] = [owners[0]];
  let holding = [0];
  let keeps: Int32Array[] = [new Int32Array(0)];

  /** Numbers the successors in `batches` as one expander would have: by parent, then step. */
  const number = (batches: Batch[]): void => {
    keeps = batches.map((b) => new Int32Array(b.hi.length).fill(-1));
    const broken = batches.map((b) => new Map<number, Broken>(b.broken.map((x) => [x.successor, x])));
    for (const b of batches) {
      for (const s of b.settled) {
        settled.set(s.state, { unmet: s.unmet });
        if (s.final && s.unmet.length > 0) deadEnd = true;
      }
    }
    const at = batches.map(() => 0);
    const next = batches.map(() => 0);
    for (;;) {
      let o = -1;
      for (let i = 0; i < batches.length; i++) if (at[i]! < batches[i]!.expanded.length && (o < 0 || batches[i]!.expanded[at[i]!]! < batches[o]!.expanded[at[o]!]!)) o = i;
      if (o < 0) return;
      const b = batches[o]!;
      const parent = b.expanded[at[o]!]!;
      const count = b.successors[at[o]!++]!;
      const first = graph.edgeTo.length;
      for (let k = 0; k < count; k++) {
        const s = next[o]!++;
        const fp = [b.hi[s]!, b.lo[s]!] as const;
        let id = visited.get(fp);
        if (id === undefined) {
          id = visited.add(fp, graph.add(parent, k));
          keeps[o]![s] = id;
          holding[o]!++;
          const bad = broken[o]!.get(s);
          if (bad) failure = { property: bad.property, message: bad.message, state: id };
          if (failure) return;
          if (graph.states >= scenario.maxStates) {
            truncated = true;
            return;
          }
        }
        graph.edgeTo.push(id);
      }
      graph.firstEdge.data[parent] = first;
      graph.degree.data[parent] = count;
    }
  };

  const seed = owners[0].expander.seed();
  visited.add([seed.hi[0]!, seed.lo[0]!], graph.add(-1, -1));
  graph.layers.push(0);
  keeps[0] = Int32Array.of(0);
  holding[0] = 1;
  if (seed.broken[0]) failure = { property: seed.broken[0].property, message: seed.broken[0].message, state: 0 };

  while (!failure && !truncated && !deadEnd && graph.states > graph.layers[graph.layers.length - 1]!) {
    const layerStart = graph.layers[graph.layers.length - 1]!;
    const layerEnd = graph.states;
    // Workers start loading once a layer is large; one that has loaded joins; then the fullest expander gives to the emptiest.
    const large = layerEnd - layerStart >= workersFrom;
    if (large) for (const owner of owners) owner.start();
    for (const owner of owners) {
      if (active.includes(owner) || !owner.ready || !large) continue;
      active.push(owner);
      holding.push(0);
      keeps.push(new Int32Array(0));
    }
    const requests: Request[] = active.map((_, i) => ({ keep: keeps[i], nextLayer: true }));
    const most = holding.indexOf(Math.max(...holding));
    const least = holding.indexOf(Math.min(...holding));
    const give = Math.floor((holding[most]! - holding[least]!) / 2);
    if (give >= Math.max(1, Math.min(HANDOVER, workersFrom / 8))) {
      active[most]!.send({ ...requests[most]!, give });
      requests[least]!.take = active[most]!.receive().given;
      requests[most] = {};
    }
    holding = active.map(() => 0);
    for (let below = layerStart + WINDOW; ; below += WINDOW) {
      active.forEach((owner, i) => owner.send({ ...requests[i], below }));
      number(active.map((owner) => owner.receive()));
      if (failure || truncated) break;
      options.progress?.(graph.states, graph.layers.length);
      if (below >= layerEnd) break;
      active.forEach((_, i) => (requests[i] = { keep: keeps[i] }));
    }
    graph.layers.push(layerEnd);
  }
  if (graph.layers[graph.layers.length - 1] !== graph.states) graph.layers.push(graph.states);

  failure ??= doomed(graph, settled) ?? (truncated ? unmetEverywhere(settled, properties.filter((p) => p.kind === 'eventually').map((p) => p.name)) : undefined);
  const model = new Model(scenario, options.overrides);
  const seconds = (performance.now() - started) / 1000;
  // A search stopped early (a violation, or the bound) has not proved what it did not finish.
  const complete = !failure && !truncated;
  return {
    scenario: scenario.name,
    states: graph.states,
    transitions: graph.transitions,
    depth: graph.layers.length - 2,
    seconds,
    statesPerSecond: Math.round(graph.states / seconds),
    truncated,
    threads: active.length,
    properties: properties.map((p) => {
      if (failure?.property === p.name) return { name: p.name, description: p.description, held: false, checked: true, message: failure.message };
      return { name: p.name, description: p.description, held: true, checked: complete || (p.kind === 'safety' && !failure) };
    }),
    counterexample: failure && sequenceDiagram(failure.property, failure.message, replay(model, [...graph.pathTo(failure.state), ...(failure.cycle ?? [])])),
    at: new Date().toISOString(),
  };
}

/** The trace of `steps` (indices into each state's enabled steps), taken again from the initial state. */
function replay(model: Model, steps: number[]): TraceStep[] {
  const trace: TraceStep[] = [];
  let world = model.initial();
  for (const k of steps) {
    const applied = model.apply(world, model.steps(world)[k]!);
    trace.push(applied.trace);
    world = applied.world;
  }
  return trace;
}
