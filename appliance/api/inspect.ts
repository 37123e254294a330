/**
 * `GET /tether/v1/inspect`: the live feed (liveFeed.ts) as Server-Sent
 * Events, one JSON LiveState per message, for `tether viz --serve`. On
 * connect it sends each live machine actor's current state, then every
 * change of a state value or status.
 */
import type { Duplex } from 'node:stream';
import type { LiveFeed, LiveState } from './liveFeed.ts';
import type { Route } from './router.ts';

export const INSPECT_PATH = '/tether/v1/inspect';
export const EVENT_STREAM = 'text/event-stream';

/** A client that lets this much pile up unread is cut off rather than held in memory. */
const MAX_BUFFERED = 1 << 20;

export function inspectRoute(feed: LiveFeed): Route {
  return {
    method: 'GET',
    path: INSPECT_PATH,
    handler: () => ({ kind: 'hijack', contentType: EVENT_STREAM, take: (socket) => stream(feed, socket) }),
  };
}

function stream(feed: LiveFeed, socket: Duplex): void {
  // Called inside the actors' processing: it must not throw.
  const send = (state: LiveState) => {
    if (socket.destroyed) return;
    if (socket.writableLength > MAX_BUFFERED) {
      socket.destroy();
      return;
    }
    socket.write(`data: ${JSON.stringify(state)}\n\n`);
  };
  const unsubscribe = feed.subscribe(send);
  socket.once('close', unsubscribe);
  if (socket.destroyed) unsubscribe();
}
