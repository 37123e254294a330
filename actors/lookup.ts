import { fromPromise, type AnyActorRef } from 'xstate';
import type { ConnectionMapEmitted, ConnectionMapEvent } from '../machines/connectionMap.ts';

/**
 * One lookup in the connection map, as a promise for the container channel
 * machine: the link carrying the container, or the map's error. Stopping the
 * actor (the attach ended first) cancels the lookup in the map.
 */
export function createLookupActor(map: () => AnyActorRef) {
  let nextRequest = 0;
  return fromPromise<{ linkId: string }, { containerId: string; timeoutMs: number }>(({ input, signal }) => {
    const requestId = `lookup${++nextRequest}`;
    const send = (event: ConnectionMapEvent) => map().send(event);
    return new Promise((resolve, reject) => {
      const settle = (finish: () => void) => {
        for (const subscription of subscriptions) subscription.unsubscribe();
        finish();
      };
      const subscriptions = [
        map().on('RESOLVED', (e: Extract<ConnectionMapEmitted, { type: 'RESOLVED' }>) => {
          if (e.requestId === requestId) settle(() => resolve({ linkId: e.linkId }));
        }),
        map().on('FAILED', (e: Extract<ConnectionMapEmitted, { type: 'FAILED' }>) => {
          if (e.requestId === requestId) settle(() => reject(new Error(e.message)));
        }),
      ];
      signal.addEventListener('abort', () => {
        send({ type: 'CANCEL', requestId });
        settle(() => reject(new Error('lookup cancelled')));
      });
      send({ type: 'LOOKUP', requestId, containerId: input.containerId, timeoutMs: input.timeoutMs });
    });
  });
}
