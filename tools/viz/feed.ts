/**
 * Follows an appliance's inspection feed (`GET /tether/v1/inspect`, Server-
 * Sent Events) for the visualizer's server. It reconnects whenever the feed
 * cannot be reached or ends, and passes on only well-formed messages: a wrong
 * address, an appliance going away or a garbled feed is reported, never fatal.
 */
import http from 'node:http';
import { type Address, formatAddress } from '../../appliance/address.ts';
import { EVENT_STREAM, INSPECT_PATH } from '../../appliance/api/inspect.ts';
import type { LiveState } from '../../appliance/api/liveFeed.ts';
import { ACTOR_STATUSES, type ActorStatus } from '../../shared/wire.ts';

export interface FeedHandlers {
  state(state: LiveState): void;
  /** The feed flows (again), or does not, and why, in words. */
  reachability(reachable: boolean, detail: string): void;
  /** A message that was not a LiveState, skipped. */
  warn(message: string): void;
}

export const RETRY_MS = 1000;
/** Longer than any real message by far; a peer sending more without a break is not an inspection feed. */
const MAX_MESSAGE = 1 << 20;

export function followFeed(appliance: Address, handlers: FeedHandlers): { close(): void } {
  const where = formatAddress(appliance);
  let closed = false;
  let request: http.ClientRequest | undefined;
  let retry: NodeJS.Timeout | undefined;

  const connect = () => {
    let over = false;
    const end = (why: string) => {
      if (over || closed) return;
      over = true;
      request?.destroy();
      handlers.reachability(false, `${where}: ${why}; retrying every ${RETRY_MS / 1000} s`);
      retry = setTimeout(connect, RETRY_MS);
    };
    const target = appliance.kind === 'unix' ? { socketPath: appliance.path } : { host: appliance.host, port: appliance.port };
    request = http.get({ ...target, path: INSPECT_PATH, headers: { Accept: EVENT_STREAM } }, (response) => {
      const type = response.headers['content-type'] ?? 'no Content-Type';
      if (response.statusCode !== 200 || !type.startsWith(EVENT_STREAM)) {
        response.resume();
        return end(`answered HTTP ${response.statusCode} (${type}), not tether's inspection feed: is it a tether appliance's Docker API address?`);
      }
      handlers.reachability(true, `${where}: connected`);
      let pending = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        const blocks = (pending + chunk).split(/\r?\n\r?\n/);
        pending = blocks.pop()!;
        if (pending.length > MAX_MESSAGE) return end(`sent more than ${MAX_MESSAGE} bytes without a message break`);
        for (const block of blocks) {
          const data = dataOf(block);
          if (data === undefined) continue;
          const state = parseLiveState(data);
          if (state) handlers.state(state);
          else handlers.warn(`skipped a malformed message from ${where}: ${JSON.stringify(data.slice(0, 200))}`);
        }
      });
      response.on('close', () => end('the feed ended'));
    });
    request.on('error', (error) => end(error.message));
  };

  connect();
  return {
    close() {
      closed = true;
      clearTimeout(retry);
      request?.destroy();
    },
  };
}

/** The data of one SSE message, its `data:` lines joined; undefined for a comment or a message with none. */
function dataOf(block: string): string | undefined {
  const lines = block.split(/\r?\n/).filter((line) => line.startsWith('data:'));
  return lines.length ? lines.map((line) => line.slice(5).replace(/^ /, '')).join('\n') : undefined;
}

function parseLiveState(data: string): LiveState | undefined {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const named = [v.system, v.actor, v.machine].every((field) => typeof field === 'string' && field !== '');
  const event = v.event === undefined || typeof v.event === 'string';
  return named && isStateValue(v.state) && event && ACTOR_STATUSES.includes(v.status as ActorStatus) ? (v as unknown as LiveState) : undefined;
}

/** xstate's StateValue: a state's name, or an object of child state values. */
function isStateValue(value: unknown): boolean {
  if (typeof value === 'string') return true;
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every(isStateValue);
}
