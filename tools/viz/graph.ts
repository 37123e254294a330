/**
 * A machine definition as a diagram model: the state boxes (nested as the
 * states are) and the arrows between them, with every label in words. Read
 * from `machine.root`, the StateNode tree xstate builds from the config, so
 * the diagram is the machine that runs, not a copy of it.
 */
import type { AnyStateMachine, AnyStateNode, AnyTransitionDefinition as Transition } from 'xstate';

export type StateKind = 'atomic' | 'compound' | 'parallel' | 'final' | 'history';

export interface StateBox {
  /** `<machineId>.<path.with.dots>`, the machine id alone for the root: the box's `data-state`. */
  id: string;
  name: string;
  kind: StateKind;
  /** A child of a parallel state: one region, drawn dashed. */
  region: boolean;
  /** Lines drawn inside the box: the invoked actors, then the transitions that change no state. */
  lines: string[];
  /** The id of the child entered first, for a compound state. */
  initial?: string;
  children: StateBox[];
}

export interface Arrow {
  id: string;
  source: string;
  target: string;
  label: string;
}

export interface MachineGraph {
  machine: string;
  root: StateBox;
  arrows: Arrow[];
}

/** The data-state id of a state node. */
export function stateId(machine: AnyStateMachine, node: AnyStateNode): string {
  return [machine.id, ...node.path].join('.');
}

export function machineGraph(machine: AnyStateMachine): MachineGraph {
  const arrows: Arrow[] = [];
  const actorNames = invokedActorNames(machine.root);

  const box = (node: AnyStateNode): StateBox => {
    const id = stateId(machine, node);
    const lines = node.invoke.map((invoke) => `invoke ${actorName(invoke, node)}`);
    const transitions = [
      ...[...node.transitions.values()].flat().map((transition) => ({ transition, event: eventLabel(transition, actorNames) })),
      ...(node.always ?? []).map((transition) => ({ transition, event: 'always' })),
    ];
    for (const { transition, event } of transitions) {
      const label = event + (transition.guard === undefined ? '' : ` [${guardName(transition.guard)}]`);
      if (!transition.target?.length) {
        lines.push(label);
        continue;
      }
      // A transition into several states (parallel regions) is one arrow per target.
      for (const target of transition.target) {
        arrows.push({ id: `${id}#${arrows.length}`, source: id, target: stateId(machine, target), label });
      }
    }
    const children = Object.values(node.states).map((child) => ({ ...box(child), region: node.type === 'parallel' }));
    const initial = node.type === 'compound' ? node.initial?.target[0] : undefined;
    return { id, name: node.key, kind: node.type, region: false, lines, initial: initial && stateId(machine, initial), children };
  };
  return { machine: machine.id, root: box(machine.root), arrows };
}

/**
 * The name of an invoked actor: its src, and its id when that says more (an
 * id xstate made up, `0.<state id>`, says nothing).
 */
function actorName(invoke: AnyStateNode['invoke'][number], node: AnyStateNode): string {
  const src = typeof invoke.src === 'string' ? invoke.src : invoke.id;
  const generated = invoke.id.endsWith(`.${node.id}`);
  return generated || invoke.id === src ? src : `${src} as ${invoke.id}`;
}

/** Invoke id → the name `done:`/`error:` labels show. */
function invokedActorNames(root: AnyStateNode): Map<string, string> {
  const names = new Map<string, string>();
  const visit = (node: AnyStateNode) => {
    for (const invoke of node.invoke) names.set(invoke.id, typeof invoke.src === 'string' ? invoke.src : invoke.id);
    Object.values(node.states).forEach(visit);
  };
  visit(root);
  return names;
}

/** What triggers a transition, as the diagram says it: the event, `after <delay>`, or what finished. */
function eventLabel(transition: Transition, actorNames: Map<string, string>): string {
  // xstate names delayed events `xstate.after.<delay>.<state id>` and keeps the delay beside them.
  if ('delay' in transition) {
    const { delay } = transition as { delay: unknown };
    return `after ${typeof delay === 'number' ? `${delay} ms` : typeof delay === 'string' ? delay : 'delay'}`;
  }
  const event = transition.eventType;
  for (const [prefix, word] of [
    ['xstate.done.actor.', 'done'],
    ['xstate.error.actor.', 'error'],
  ] as const) {
    if (event.startsWith(prefix)) {
      const invokeId = event.slice(prefix.length);
      return `${word}: ${actorNames.get(invokeId) ?? invokeId}`;
    }
  }
  if (event.startsWith('xstate.done.state.')) return `done: ${event.slice('xstate.done.state.'.length).split('.').pop()}`;
  return event;
}

/** A named guard by its name; an inline function has none, so it is just "guard". */
function guardName(guard: unknown): string {
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'object' && guard !== null && 'type' in guard) return String(guard.type);
  return 'guard';
}
