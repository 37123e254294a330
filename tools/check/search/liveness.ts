import type { Graph } from './graph.ts';

/**
 * The eventual properties, decided on the explored graph. Every run ends in
 * a bottom strongly connected component (a set of states it can no longer
 * leave, and under fair scheduling visits again and again): a state with
 * nothing left to happen, or a cycle such as a keepalive ticking in an idle
 * system. Such a component is good when one of its settled states meets
 * every eventual property. A component of fully expanded states that no
 * explored edge leaves is one of the whole space even when the search was
 * cut, so a bad one is a counterexample either way.
 *
 * The counterexample runs to the end: to the nearest settled state of the
 * bad component, naming the property that fails there; with no settled state
 * in it, the run never settles (a livelock), and the trace goes round the
 * cycle once. Of the bad components, the one reached by the shortest trace
 * is reported.
 */

export interface SettledInfo {
  /** Every `eventually` property that fails in the state, in the order of the list, with how. */
  unmet: Array<[string, string]>;
}

export interface Doom {
  /** The settled state the trace ends at (or, for a livelock, where the cycle starts). */
  state: number;
  property: string;
  message: string;
  /** For a livelock, the steps from `state` round the cycle back to it. */
  cycle?: number[];
}

export function doomed(graph: Graph, settled: Map<number, SettledInfo>): Doom | undefined {
  let worst: Doom | undefined;
  for (const component of bottomComponents(graph)) {
    const members = component.sort((a, b) => a - b);
    const settledHere = members.filter((s) => settled.has(s));
    if (settledHere.some((s) => settled.get(s)!.unmet.length === 0)) continue;
    const state = settledHere[0] ?? members[0]!;
    if (worst && worst.state <= state) continue;
    if (settledHere.length > 0) {
      // The property that fails wherever such a run comes to rest, if one does; else the nearest state's first.
      const everywhere = settled.get(state)!.unmet.find(([name]) => settledHere.every((s) => settled.get(s)!.unmet.some(([other]) => other === name)));
      const [property, message] = everywhere ?? settled.get(state)!.unmet[0]!;
      worst = { state, property, message: `${message}; no run from here meets it` };
    } else {
      worst = { state, property: 'progress', message: `from here every run goes round a cycle of ${members.length} states that never settles: a livelock`, cycle: cycleThrough(graph, state, new Set(members)) };
    }
  }
  return worst;
}

/**
 * In a search cut at its bound: the first of the eventual properties `names`
 * that no settled state explored meets, though some were explored (the
 * nearest such state is the counterexample): nothing explored suggests it
 * ever holds.
 */
export function unmetEverywhere(settled: Map<number, SettledInfo>, names: string[]): Doom | undefined {
  if (settled.size === 0) return undefined;
  const states = [...settled.keys()].sort((a, b) => a - b);
  for (const name of names) {
    if (!states.every((s) => settled.get(s)!.unmet.some(([unmet]) => unmet === name))) continue;
    const [, message] = settled.get(states[0]!)!.unmet.find(([unmet]) => unmet === name)!;
    return { property: name, message: `${message}; no settled state of the ${settled.size} explored before the cut meets it`, state: states[0]! };
  }
  return undefined;
}

/** Bottom components made only of completely expanded states, each as its list of states (Tarjan's algorithm, without recursion). */
function bottomComponents(graph: Graph): number[][] {
  const n = graph.states;
  const index = new Int32Array(n).fill(-1);
  const low = new Int32Array(n);
  const onStack = new Uint8Array(n);
  const stack: number[] = [];
  const found: number[][] = [];
  let counter = 0;
  for (let root = 0; root < n; root++) {
    if (index[root] !== -1) continue;
    // Each frame: the state and the position of the next successor to visit.
    const frames: Array<[number, number]> = [[root, 0]];
    index[root] = low[root] = counter++;
    stack.push(root);
    onStack[root] = 1;
    while (frames.length > 0) {
      const frame = frames[frames.length - 1]!;
      const [v, next] = frame;
      const succ = graph.successors(v);
      if (succ && next < succ.length) {
        frame[1]++;
        const w = succ[next]!;
        if (index[w] === -1) {
          index[w] = low[w] = counter++;
          stack.push(w);
          onStack[w] = 1;
          frames.push([w, 0]);
        } else if (onStack[w]) low[v] = Math.min(low[v]!, index[w]!);
        continue;
      }
      frames.pop();
      if (frames.length > 0) {
        const u = frames[frames.length - 1]![0];
        low[u] = Math.min(low[u]!, low[v]!);
      }
      if (low[v] !== index[v]) continue;
      const component: number[] = [];
      let w: number;
      do {
        w = stack.pop()!;
        onStack[w] = 0;
        component.push(w);
      } while (w !== v);
      if (isClosedBottom(graph, component)) found.push(component);
    }
  }
  return found;
}

function isClosedBottom(graph: Graph, component: number[]): boolean {
  const members = component.length > 8 ? new Set(component) : undefined;
  for (const s of component) {
    const succ = graph.successors(s);
    if (!succ) return false;
    for (const t of succ) if (members ? !members.has(t) : !component.includes(t)) return false;
  }
  return true;
}

/** The steps of a shortest cycle from `start` back to it inside `members` (breadth-first). */
function cycleThrough(graph: Graph, start: number, members: Set<number>): number[] {
  const via = new Map<number, [number, number]>();
  const queue = [start];
  for (let head = 0; head < queue.length; head++) {
    const s = queue[head]!;
    const succ = graph.successors(s)!;
    for (let k = 0; k < succ.length; k++) {
      const t = succ[k]!;
      if (!members.has(t) || (t !== start && via.has(t))) continue;
      if (t === start) {
        const steps = [k];
        for (let u = s; u !== start; u = via.get(u)![0]) steps.push(via.get(u)![1]);
        return steps.reverse();
      }
      via.set(t, [s, k]);
      queue.push(t);
    }
  }
  return [];
}
