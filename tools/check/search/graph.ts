import { IntList } from './intList.ts';

/**
 * The explored state graph, as compact as the search can keep it: for each
 * state its parent in the breadth-first tree and the step (by its index in
 * the parent's `steps`) that reached it first, and for each expanded state
 * its successors in step order. States are numbered in breadth-first order,
 * so the tree path to a state is a shortest one, and a smaller number is
 * never deeper.
 */
export class Graph {
  readonly parent = new IntList(Int32Array);
  readonly parentStep = new IntList(Int32Array);
  /** Per state, where its successors start in `edgeTo`; -1 until it is expanded completely. */
  readonly firstEdge = new IntList(Int32Array);
  readonly degree = new IntList(Int32Array);
  readonly edgeTo = new IntList(Int32Array);
  /** The first state of each layer: `layers[d]` is the first state at depth d. */
  readonly layers: number[] = [];

  get states(): number {
    return this.parent.length;
  }

  get transitions(): number {
    return this.edgeTo.length;
  }

  add(parent: number, step: number): number {
    this.parent.push(parent);
    this.parentStep.push(step);
    this.firstEdge.push(-1);
    this.degree.push(0);
    return this.parent.length - 1;
  }

  /** The successors of `state`, in step order, or undefined when it was not expanded completely. */
  successors(state: number): Int32Array | undefined {
    const first = this.firstEdge.data[state]!;
    if (first < 0) return undefined;
    return this.edgeTo.data.subarray(first, first + this.degree.data[state]!);
  }

  /** The steps from the initial state to `state` along the tree: indices into each state's `steps`. */
  pathTo(state: number): number[] {
    const steps: number[] = [];
    for (let s = state; s > 0; s = this.parent.data[s]!) steps.push(this.parentStep.data[s]!);
    return steps.reverse();
  }
}
