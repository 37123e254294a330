import { createActor, fromCallback, type AnyStateMachine } from 'xstate';
import type { SessionCommand, SessionEvent } from '../machines/guest.ts';
import type { ProcessSessionEmitted, ProcessSessionInput, processSessionMachine } from '../machines/processSession.ts';
import type { Bus } from '../shared/bus.ts';

type Emitted<T extends ProcessSessionEmitted['type']> = Extract<ProcessSessionEmitted, { type: T }>;

/**
 * Hosts one process-session machine for the guest machine. The session
 * announces itself by emitting events, which a parent machine cannot
 * subscribe to, so this host relays them as SESSION_CHANGED and
 * SESSION_OUTPUT, and publishes each change on the domain-event bus.
 */
export function createSessionHost(session: typeof processSessionMachine | AnyStateMachine, bus?: Bus) {
  return fromCallback<SessionCommand, ProcessSessionInput>(({ input, sendBack, receive }) => {
    const actor = createActor(session as typeof processSessionMachine, { input });
    const report = (event: SessionEvent) => sendBack(event);
    actor.on('SESSION_OUTPUT', (e: Emitted<'SESSION_OUTPUT'>) => report({ type: 'SESSION_OUTPUT', sessionId: e.sessionId, stream: e.stream, data: e.data }));
    actor.on('SESSION_CHANGED', (e: Emitted<'SESSION_CHANGED'>) => {
      report({ type: 'SESSION_CHANGED', sessionId: e.sessionId, view: e.view });
      bus?.emit('session.changed', { sessionId: e.sessionId, state: e.view.state, exitCode: e.view.exitCode });
    });
    receive((command) => actor.send(command));
    actor.start();
    return () => actor.stop();
  });
}
