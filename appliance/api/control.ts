/**
 * The container routes that signal its process: kill and stop, with Docker's
 * statuses (204 done, 304 already stopped, 400 bad parameter, 404 unknown
 * container, 409 not running).
 */
import { parseSignal } from '../../shared/signals.ts';
import { MAX_STOP_TIMEOUT } from '../../shared/wire.ts';
import type { ContainerControl } from './directory.ts';
import { ApiError } from './errors.ts';
import { intParam } from './query.ts';
import type { Reply } from './reply.ts';
import type { Route } from './router.ts';

const empty = (status: number): Reply => ({ kind: 'full', status, headers: {}, body: '' });

/** Docker's spellings (KILL, SIGKILL, kill, 9), canonical; a name no signal has is Docker's 400. */
function signalParam(query: URLSearchParams): string | undefined {
  const raw = query.get('signal');
  if (raw === null || raw === '') return undefined;
  const signal = parseSignal(raw);
  if (signal === undefined) throw new ApiError(400, `Invalid signal: ${raw}`);
  return signal;
}

export function controlRoutes(control: ContainerControl): Route[] {
  return [
    {
      method: 'POST',
      path: '/containers/{id}/kill',
      handler: async ({ params, query }) => {
        await control.kill(params.id!, signalParam(query) ?? 'KILL');
        return empty(204);
      },
    },
    {
      method: 'POST',
      path: '/containers/{id}/stop',
      handler: async ({ params, query }) => {
        const signal = signalParam(query);
        const timeout = intParam(query, 't', { min: 0, max: MAX_STOP_TIMEOUT });
        const outcome = await control.stop(params.id!, { ...(timeout === undefined ? {} : { timeout }), ...(signal === undefined ? {} : { signal }) });
        return empty(outcome === 'stopped' ? 204 : 304);
      },
    },
  ];
}
