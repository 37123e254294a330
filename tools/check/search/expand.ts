import { deserialize, serialize } from 'node:v8';
import { stateKey } from '../canonical.ts';
import { Model, type Overrides } from '../model.ts';
import { properties, type Property } from '../properties.ts';
import type { Scenario } from '../scenario.ts';
import type { WorldState } from '../world.ts';
import { FingerprintSet, fingerprintOf } from './fingerprints.ts';
import { Frontier } from './frontier.ts';
import { overgrown } from './growth.ts';
import { IntList } from './intList.ts';

/**
 * One expander of the breadth-first search: it holds the worlds of the
 * states it owns, expands them when asked and reports what it found; it
 * never decides which state is new. The search (explore.ts) numbers the
 * states in the order a single search would have met them and tells each
 * expander which of its successors to keep: it owns those in the next layer.
 * The expander runs in the search's thread or in a worker (worker.ts), so
 * that both cores expand at once.
 */

/** What an expander says about a state it expanded that was settled (nothing left to happen but the clock). */
export interface Settled {
  state: number;
  /** Every `eventually` property that fails in it, in the list's order, and how (naming the scenario's bound when that is why nothing more happens). */
  unmet: Array<[string, string]>;
  /** Nothing at all can happen in it. */
  final: boolean;
}

/** A safety property a successor breaks. */
export interface Broken {
  successor: number;
  property: string;
  message: string;
}

/** What one expansion found: the states expanded in order, each one's successors (step k of its `steps`) in order. */
export interface Batch {
  expanded: Int32Array;
  successors: Int32Array;
  hi: Uint32Array;
  lo: Uint32Array;
  settled: Settled[];
  broken: Broken[];
  /** States handed over to another expander (`give`), serialized. */
  given?: Uint8Array;
}

/** What the search asks of an expander: keep some successors of its last batch, move to the next layer, expand the states numbered below `below`. */
export interface Request {
  /** For each successor of the last batch, its state number if the expander is to keep it, else -1. */
  keep?: Int32Array;
  nextLayer?: boolean;
  /** With nextLayer: hand over this many states of the new layer, spread over it, to balance the expanders. */
  give?: number;
  /** With nextLayer: states another expander gave, to expand in this layer beside its own. */
  take?: Uint8Array;
  /** Expand the states of this layer numbered below this; absent: only keep. */
  below?: number;
}

export class Expander {
  readonly #model: Model;
  readonly #scenario: Scenario;
  #current: Iterator<[number, WorldState]> = [][Symbol.iterator]();
  #peeked: [number, WorldState] | undefined;
  #next: Frontier;
  #nextSize = 0;
  readonly #memoryLimit: number | undefined;
  #pending: WorldState[] = [];
  /** Fingerprints this expander has produced before: a repeated one is known and needs no checking. */
  readonly #seen = new FingerprintSet();

  constructor(scenario: Scenario, overrides: Overrides | undefined, memoryLimit?: number) {
    this.#scenario = scenario;
    this.#model = new Model(scenario, overrides);
    this.#memoryLimit = memoryLimit;
    this.#next = new Frontier(memoryLimit);
  }

  /** The initial state, as a batch of one successor of no state. */
  seed(): Batch {
    const batch = new BatchBuilder();
    this.#pending = [];
    this.#successor(batch, this.#model.initial());
    return batch.done();
  }

  handle(request: Request): Batch {
    if (request.keep) this.#keep(request.keep);
    const batch = new BatchBuilder();
    if (request.nextLayer) {
      const layer = this.#next.drain();
      this.#next = new Frontier(this.#memoryLimit);
      this.#peeked = undefined;
      if (request.give) {
        const [kept, given] = spread(layer, this.#nextSize, request.give, this.#memoryLimit);
        batch.given = serialize(given);
        this.#current = kept.drain();
      } else this.#current = request.take ? byId(layer, deserialize(request.take) as Array<[number, WorldState]>) : layer;
      this.#nextSize = 0;
    }
    this.#pending = [];
    if (request.below === undefined) return batch.done();
    for (;;) {
      this.#peeked ??= this.#current.next().value as [number, WorldState] | undefined;
      if (!this.#peeked || this.#peeked[0] >= request.below) break;
      const [id, world] = this.#peeked;
      this.#peeked = undefined;
      this.#expand(batch, id, world);
    }
    return batch.done();
  }

  #keep(ids: Int32Array): void {
    for (let k = 0; k < ids.length; k++) {
      if (ids[k]! < 0) continue;
      this.#next.push(ids[k]!, this.#pending[k]!);
      this.#nextSize++;
    }
    this.#pending = [];
  }

  #expand(batch: BatchBuilder, id: number, world: WorldState): void {
    const steps = this.#model.steps(world);
    if (steps.every((step) => step.kind === 'timer')) {
      const bound = steps.length === 0 ? this.#model.exhausted(world) : undefined;
      const unmet = failing(world, this.#scenario, 'eventually').map(([name, message]): [string, string] => [name, bound ? `${message} when ${bound}` : message]);
      batch.settled.push({ state: id, final: steps.length === 0, unmet });
    }
    batch.expanded.push(id);
    batch.successors.push(steps.length);
    for (const step of steps) this.#successor(batch, this.#model.apply(world, step).world);
  }

  #successor(batch: BatchBuilder, world: WorldState): void {
    const fp = fingerprintOf(stateKey(world));
    const index = this.#pending.push(world) - 1;
    batch.hi.push(fp[0]);
    batch.lo.push(fp[1]);
    if (this.#seen.get(fp) !== undefined) return;
    this.#seen.add(fp, index);
    const [broken] = failing(world, this.#scenario, 'safety');
    if (broken) return void batch.broken.push({ successor: index, property: broken[0], message: broken[1] });
    const grown = overgrown(world);
    if (grown) batch.broken.push({ successor: index, property: 'progress', message: `${grown.path} holds ${grown.length} items and grows on: a run that never settles` });
  }
}

/** The properties of `kind` that fail in `world`, in the list's order, and how. */
function failing(world: WorldState, scenario: Scenario, kind: Property['kind']): Array<[string, string]> {
  const found: Array<[string, string]> = [];
  for (const property of properties) {
    if (property.kind !== kind) continue;
    const message = property.check(world, scenario);
    if (message) {
      found.push([property.name, message]);
      // A safety violation stops the search: the first is all it reports.
      if (kind === 'safety') break;
    }
  }
  return found;
}

/** Splits a layer of `size` states: `give` of them, evenly spread, to hand over; the rest kept, in order. */
function spread(layer: Iterable<[number, WorldState]>, size: number, give: number, memoryLimit: number | undefined): [Frontier, Array<[number, WorldState]>] {
  const kept = new Frontier(memoryLimit);
  const given: Array<[number, WorldState]> = [];
  let owed = 0;
  for (const entry of layer) {
    owed += give / size;
    if (owed >= 1 && given.length < give) {
      owed--;
      given.push(entry);
    } else kept.push(...entry);
  }
  return [kept, given];
}

/** Two runs of states, each in order of their numbers, as one. */
function* byId(mine: Iterator<[number, WorldState]>, taken: Array<[number, WorldState]>): Generator<[number, WorldState]> {
  let next = mine.next();
  for (const entry of taken) {
    while (!next.done && next.value[0] < entry[0]) {
      yield next.value;
      next = mine.next();
    }
    yield entry;
  }
  while (!next.done) {
    yield next.value;
    next = mine.next();
  }
}

/** Growing typed arrays for a batch. */
class BatchBuilder {
  expanded = new IntList(Int32Array);
  successors = new IntList(Int32Array);
  hi = new IntList(Uint32Array);
  lo = new IntList(Uint32Array);
  settled: Settled[] = [];
  broken: Broken[] = [];
  given?: Uint8Array;

  done(): Batch {
    return { expanded: this.expanded.array(), successors: this.successors.array(), hi: this.hi.array(), lo: this.lo.array(), settled: this.settled, broken: this.broken, ...(this.given ? { given: this.given } : {}) };
  }
}
