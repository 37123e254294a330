/**
 * The container routes that signal its process: kill and stop, with Docker's
 * statuses (204 done, 304 already stopped, 400 bad parameter, 404 unknown
 * container, 409 not running, 500 a stop that outlived its deadline).
 */
import { DEFAULT_STOP_TIMEOUT } from '../../shared/config.ts';
import { parseSignal } from '../../shared/signals.ts';
import { MAX_STOP_TIMEOUT } from '../../shared/wire.ts';
import type { ContainerControl, ContainerDirectory } from './directory.ts';
import { ApiError } from './errors.ts';
import { intParam } from './query.ts';
import type { Reply } from './reply.ts';
import type { Route } from './router.ts';
import { realTimer, type Timer, withinStopDeadline } from './stopDeadline.ts';

const empty = (status: number): Reply => ({ kind: 'full', status, headers: {}, body: '' });

/** Docker's spellings (KILL, SIGKILL, kill, 9), canonical; a name no signal has is Docker's 400. */
function signalParam(query: URLSearchParams): string | undefined {
  const raw = query.get('signal');
  if (raw === null || raw === '') return undefined;
  const signal = parseSignal(raw);
  if (signal === undefined) throw new ApiError(400, `Invalid signal: ${raw}`);
  return signal;
}

/**
 * Docker words a refused kill with what was asked: "Cannot kill container:
 * web: No such container: web", "...: Container 4f2a... is not running". The
 * other failures (a link down, the guest's refusal) already say "Cannot kill
 * container ...".
 */
function killError(ref: string, error: unknown): unknown {
  const refused = error instanceof ApiError && (error.status === 404 || error.status === 409);
  return refused ? new ApiError(error.status, `Cannot kill container: ${ref}: ${error.message}`) : error;
}

/** `timer` decides when a stop's deadline is up; tests pass their own. */
export function controlRoutes(control: ContainerControl & Pick<ContainerDirectory, 'find'>, timer: Timer = realTimer): Route[] {
  return [
    {
      method: 'POST',
      path: '/containers/{id}/kill',
      handler: async ({ params, query }) => {
        const signal = signalParam(query) ?? 'KILL';
        await control.kill(params.id!, signal).catch((error: unknown) => {
          throw killError(params.id!, error);
        });
        return empty(204);
      },
    },
    {
      method: 'POST',
      path: '/containers/{id}/stop',
      handler: async ({ params, query }) => {
        const signal = signalParam(query);
        const timeout = intParam(query, 't', { min: 0, max: MAX_STOP_TIMEOUT });
        const stopping = control.stop(params.id!, { ...(timeout === undefined ? {} : { timeout }), ...(signal === undefined ? {} : { signal }) });
        // Without t the guest applies the session's own stop timeout, which it reports (a guest too old to: the default).
        const applied = timeout ?? control.find(params.id!)?.stopTimeout ?? DEFAULT_STOP_TIMEOUT;
        const outcome = await withinStopDeadline(stopping, params.id!, applied, timer);
        return empty(outcome === 'stopped' ? 204 : 304);
      },
    },
  ];
}
