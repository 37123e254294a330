import { parseSignal } from '../shared/signals.ts';
import type { RequestFailure } from '../shared/wire.ts';
import type { SessionView } from './processSession.ts';

/**
 * Whether the guest machine refuses what the appliance asks of a session
 * (kill@tether, stop@tether, exec@tether), and why, from the sessions as
 * the machine holds them when the request arrives.
 */

type Sessions = Readonly<Record<string, SessionView>>;

/** A kill needs a process to signal: only a running session has one. */
export function killRefusal(sessions: Sessions, request: { sessionId: string; signal: string }): RequestFailure | undefined {
  const view = sessions[request.sessionId];
  if (!view) return unknownId(request.sessionId, sessions);
  if (parseSignal(request.signal) === undefined) return { kind: 'unknown-signal', message: `no signal named ${request.signal}` };
  if (view.state !== 'running') return { kind: 'not-running', message: notRunning(request.sessionId, view) };
  return undefined;
}

/** A session that has not ended can be stopped, also one that never started (it ends without running). */
export function stopRefusal(sessions: Sessions, request: { sessionId: string; signal?: string }): RequestFailure | undefined {
  const view = sessions[request.sessionId];
  if (!view) return unknownId(request.sessionId, sessions);
  if (request.signal !== undefined && parseSignal(request.signal) === undefined) return { kind: 'unknown-signal', message: `no signal named ${request.signal}` };
  if (view.state === 'exited' || view.state === 'failed') return { kind: 'not-running', message: notRunning(request.sessionId, view) };
  return undefined;
}

/** A new session joins a running container, under an ID no session has. */
export function execRefusal(sessions: Sessions, request: { containerId: string; sessionId: string }): RequestFailure | undefined {
  const container = sessions[request.containerId];
  if (!container) return unknownId(request.containerId, sessions);
  if (container.state !== 'running') return { kind: 'not-running', message: notRunning(request.containerId, container) };
  if (request.sessionId in sessions) return { kind: 'refused', message: `a session ${request.sessionId} exists already` };
  return undefined;
}

function unknownId(id: string, sessions: Sessions): RequestFailure {
  return { kind: 'unknown-id', message: `no session ${id} in this guest (it has ${Object.keys(sessions).length})` };
}

/** The state a session is in, in the words of a refusal. */
function notRunning(id: string, view: SessionView): string {
  switch (view.state) {
    case 'created':
      return `session ${id} has not started yet`;
    case 'blocked':
      return `session ${id} has not started: it waits for an attach to release it (run-block)`;
    case 'exited':
      return `session ${id} has exited${view.exitCode === undefined ? '' : ` with code ${view.exitCode}`}`;
    case 'failed':
      return `session ${id} failed to launch${view.error ? `: ${view.error}` : ''}`;
    case 'running':
      return `session ${id} is running`;
  }
}
