import t from 'tap';
import { explore } from '../tools/check/explore.ts';
import { mutants } from '../tools/check/mutants.ts';
import type { LiveSystem, SystemState } from '../tools/check/runtime.ts';
import { Runs } from '../tools/check/runs.ts';
import { FingerprintSet } from '../tools/check/search/fingerprints.ts';
import { Frontier } from '../tools/check/search/frontier.ts';
import { Graph } from '../tools/check/search/graph.ts';
import { overgrown } from '../tools/check/search/growth.ts';
import { doomed, unmetEverywhere } from '../tools/check/search/liveness.ts';
import type { WorldState } from '../tools/check/world.ts';

// The search's machinery: the visited set, the frontier on disk, runs
// replayed, the eventual properties decided on the graph, the workers.

const mutant = (id: string) => mutants.find((m) => m.id === id)!;

t.test('the visited set finds each fingerprint it was given, under its number, as it grows', async (t) => {
  const set = new FingerprintSet();
  const fp = (i: number) => [Math.imul(i, 0x9e3779b1) >>> 0, i] as const;
  const wrong: number[] = [];
  for (let i = 0; i < 200_000; i++) if (set.add(fp(i), i) !== i) wrong.push(i);
  t.same(wrong, [], 'each new fingerprint takes the number given');
  t.equal(set.size, 200_000);
  t.equal(set.add(fp(12_345), 999_999), 12_345, 'a known fingerprint keeps its number');
  t.equal(set.get(fp(199_999)), 199_999);
  t.equal(set.get([1, 200_001]), undefined);
});

t.test('a frontier spilled to disk gives back its states in order, their snapshots the very objects', async (t) => {
  const snapshots = [{ value: 'a' }, { value: 'b' }];
  const world = (i: number) => ({ systems: { guest: { snapshot: snapshots[i % 2], timers: [] } }, now: i, data: Uint8Array.of(i & 0xff) }) as unknown as WorldState;
  const frontier = new Frontier(5000);
  for (let i = 0; i < 20_000; i++) frontier.push(i, world(i));
  t.ok(frontier.onDisk > 0, 'some of it went to disk');
  let n = 0;
  for (const [id, w] of frontier.drain()) {
    if (id !== n || w.now !== n || w.systems.guest!.snapshot !== snapshots[n % 2] || (w as unknown as { data: Uint8Array }).data[0] !== (n & 0xff)) return t.fail(`state ${n} came back as ${id}`);
    n++;
  }
  t.equal(n, 20_000);
  t.equal(frontier.length, 0, 'and it is empty after');
});

t.test('a run taken again is replayed, its calls on the world made again; a different answer takes it for real', async (t) => {
  const runs = new Runs();
  let counter = 0;
  const world: string[] = [];
  const named = (what: string) => (world.push(what), `ch${++counter}`);
  let real = 0;
  // A system that, on any event, asks the world to name a channel and keeps the name.
  const live = () => {
    real++;
    let kept = '';
    return {
      send: () => void (kept = runs.effect(named, 'open') as string),
      fire: () => undefined,
      persist: (): SystemState => ({ snapshot: { kept }, timers: [] }),
    } as unknown as LiveSystem;
  };
  const state: SystemState = { snapshot: { kept: '' }, timers: [] };
  const step = (to: { send(path: string, event: { type: string }): unknown }) => to.send('', { type: 'GO' });
  const first = runs.run('s', state, undefined, 0, step, live);
  t.same([first.snapshot, real, world], [{ kept: 'ch1' }, 1, ['open']]);
  counter = 0;
  const again = runs.run('s', state, undefined, 0, step, live);
  t.same([again.snapshot, real, world], [{ kept: 'ch1' }, 1, ['open', 'open']], 'replayed: the world was asked again, xstate was not run');
  const other = runs.run('s', state, undefined, 0, step, live);
  t.same([other.snapshot, real, world], [{ kept: 'ch2' }, 2, ['open', 'open', 'open']], 'a new answer: run for real, the call not made twice');
  counter = 1;
  t.same(runs.run('s', state, undefined, 0, step, live).snapshot, { kept: 'ch2' }, 'both tapes are kept');
  t.equal(real, 2);
});

/** A graph from successor lists; every state listed is expanded, the others are not. */
function graphOf(successors: number[][], states = successors.length): Graph {
  const graph = new Graph();
  for (let s = 0; s < states; s++) graph.add(s - 1, 0);
  successors.forEach((succ, s) => {
    graph.firstEdge.data[s] = graph.edgeTo.length;
    graph.degree.data[s] = succ.length;
    for (const to of succ) graph.edgeTo.push(to);
  });
  return graph;
}

t.test('a run that comes to rest where a property fails is named by that property, at the nearest state where it rests', async (t) => {
  // 0 → 1 → 2 ⇄ 3 (settled, bad: a keepalive cycle), and 0 → 4, settled and good.
  const graph = graphOf([[1, 4], [2], [3], [2], []]);
  const settled = new Map([
    [3, { unmet: [['attach-settles', 'attach0 is stuck'] as [string, string]] }],
    [4, { unmet: [] }],
  ]);
  t.match(doomed(graph, settled), { state: 3, property: 'attach-settles', message: /^attach0 is stuck; no run from here meets it$/ });
  settled.set(2, { unmet: [] });
  t.equal(doomed(graph, settled), undefined, 'a good settled state in the cycle: runs may end well');
});

t.test('a cycle with no settled state is a livelock, shown once round', async (t) => {
  const graph = graphOf([[1], [2], [3], [1]]);
  t.match(doomed(graph, new Map()), { state: 1, property: 'progress', message: /livelock/, cycle: [0, 0, 0] });
});

t.test('a cut search decides only the components it explored completely', async (t) => {
  // State 2 was never expanded: the cycle 1 → 2 → 1 may have a way out.
  const graph = graphOf([[1], [2]], 3);
  t.equal(doomed(graph, new Map()), undefined);
  // Cut just short of the whole space: its last state is never reached.
  const { scenario, overrides } = mutant('no-rehandshake');
  const cut = explore({ ...scenario, maxStates: explore(scenario, { overrides }).states - 1 }, { overrides });
  t.equal(cut.truncated, true);
  t.match(cut.properties.find((p) => p.name === 'no-deadlock'), { held: false, message: /handshake started 6 exchanges/ }, 'a dead end inside the cut is found');
});

t.test('a cut search reports an eventual property that no settled state it explored meets', async (t) => {
  const unmet = (...names: string[]) => ({ unmet: names.map((name): [string, string] => [name, `${name} is missing`]) });
  const settled = new Map([
    [9, unmet('no-deadlock', 'attach-settles')],
    [4, unmet('attach-settles')],
  ]);
  t.match(unmetEverywhere(settled, ['no-deadlock', 'attach-settles']), { state: 4, property: 'attach-settles', message: /^attach-settles is missing; no settled state of the 2 explored before the cut meets it$/ });
  settled.set(12, unmet());
  t.equal(unmetEverywhere(settled, ['no-deadlock', 'attach-settles']), undefined, 'one settled state where all hold: undecided');
  t.equal(unmetEverywhere(new Map(), ['no-deadlock']), undefined, 'no settled state at all: undecided');
});

t.test('a queue that grows past the bound is found, by its path', async (t) => {
  const world = { systems: { guest: { snapshot: { children: new Array(100).fill(0) }, timers: [] } }, lines: { guest: { toGuest: new Array(40).fill({ kind: 'bytes' }), toAppliance: [] } } } as unknown as WorldState;
  t.same(overgrown(world), { path: 'lines.guest.toGuest', length: 40 }, "the systems' own arrays are not queues");
  t.equal(overgrown(world, 40), undefined);
});

t.test('two threads report what one does: states, transitions and the counterexample', async (t) => {
  const { scenario, overrides } = mutant('exit-to-one-channel');
  const one = explore(scenario, { overrides, threads: 1 });
  const two = explore(scenario, { overrides, threads: 2, workersFrom: 0 });
  t.equal(two.threads, 2, 'the worker took part');
  t.same([two.states, two.transitions, two.depth], [one.states, one.transitions, one.depth]);
  t.equal(two.counterexample?.text, one.counterexample?.text);
  t.match(one.counterexample?.text, /violated: attach-settles: /);
});
