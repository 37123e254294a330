import { createActor, fromCallback, type AnyStateMachine } from 'xstate';
import type { SessionCommand, SessionEvent, SessionView } from '../machines/guest.ts';
import type { Bus } from '../shared/bus.ts';
import type { ProcessSessionInput, ProcessSessionEmitted, processSessionMachine } from '../machines/processSession.ts';

/**
 * Hosts one process-session machine for the guest machine: the session
 * announces itself by emitting events, which a parent machine cannot
 * subscribe to, so this host relays them as SESSION_CHANGED (with the
 * session's view, stamped with the time of the change) and SESSION_OUTPUT,
 * and publishes each change on the domain-event bus.
 */
export function createSessionHost(session: typeof processSessionMachine | AnyStateMachine, bus?: Bus, now: () => string = () => new Date().toISOString()) {
  return fromCallback<SessionCommand, ProcessSessionInput>(({ input, sendBack, receive }) => {
    const actor = createActor(session as typeof processSessionMachine, { input });
    const report = (event: SessionEvent) => sendBack(event);
    let startedAt: string | undefined;
    let finishedAt: string | undefined;
    actor.on('SESSION_OUTPUT', (e: Extract<ProcessSessionEmitted, { type: 'SESSION_OUTPUT' }>) =>
      report({ type: 'SESSION_OUTPUT', sessionId: e.sessionId, stream: e.stream, data: e.data }),
    );
    actor.on('SESSION_CHANGED', () => {
      // Emitted from entry actions: the snapshot already holds the new state.
      const snapshot = actor.getSnapshot();
      const state = String(snapshot.value) as SessionView['state'] | 'configured' | 'launching';
      const { pid, exitCode, signal, error } = snapshot.context;
      if (state === 'running') startedAt ??= now();
      if (state === 'exited' || state === 'failed') finishedAt ??= now();
      const view: SessionView = {
        state: state === 'launching' || state === 'configured' ? 'created' : state,
        ...(pid === undefined ? {} : { pid }),
        ...(exitCode === undefined ? {} : { exitCode }),
        ...(signal === undefined ? {} : { signal }),
        ...(error === undefined ? {} : { error }),
        ...(startedAt === undefined ? {} : { startedAt }),
        ...(finishedAt === undefined ? {} : { finishedAt }),
      };
      report({ type: 'SESSION_CHANGED', sessionId: input.sessionId, view });
      bus?.emit('session.changed', { sessionId: input.sessionId, state: view.state, exitCode: view.exitCode });
    });
    receive((command) => actor.send(command as never));
    actor.start();
    return () => actor.stop();
  });
}
