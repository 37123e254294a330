import { assign, createActor, setup, type AnyActorLogic, type EventObject, type SimulatedClock } from 'xstate';

/**
 * A root that hosts `logic` under system ID `systemId` and records what it
 * is told: for testing a machine that reports to its parent. With `clock`,
 * the machine's delays run on it.
 */
export function host(systemId: string, logic: AnyActorLogic, input: unknown, clock?: SimulatedClock) {
  const root = setup({ actors: { child: logic } }).createMachine({
    context: { told: [] as EventObject[] },
    invoke: { id: 'child', src: 'child', input },
    // xstate's own events (the child's completion) are not what the child told us.
    on: { '*': { guard: ({ event }) => !event.type.startsWith('xstate.'), actions: assign({ told: ({ context, event }) => [...context.told, event] }) } },
  });
  const actor = createActor(root, { systemId, ...(clock === undefined ? {} : { clock }) }).start();
  return { actor, told: () => actor.getSnapshot().context.told };
}
