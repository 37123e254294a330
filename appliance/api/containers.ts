/**
 * The container routes that answer with JSON: list, inspect, wait, resize.
 */
import { parseListFilter } from './containerFilters.ts';
import type { ContainerDirectory, ContainerRecord, WaitCondition } from './directory.ts';
import { isListed, isRunning } from './containerState.ts';
import { inspectView, listEntry } from './containerViews.ts';
import { ApiError, messageOf, noSuchContainer } from './errors.ts';
import { boolParam, intParam, requiredIntParam } from './query.ts';
import { json, jsonBody } from './reply.ts';
import type { ReleasingAttaches } from './releasingAttaches.ts';
import type { Route } from './router.ts';

const WAIT_CONDITIONS: readonly WaitCondition[] = ['not-running', 'next-exit', 'removed'];

function isWaitCondition(value: string): value is WaitCondition {
  return (WAIT_CONDITIONS as readonly string[]).includes(value);
}

export function findContainer(directory: ContainerDirectory, ref: string): ContainerRecord {
  const record = directory.find(ref);
  if (!record) throw noSuchContainer(ref, directory.explainUnknown(ref));
  return record;
}

export function containerRoutes(directory: ContainerDirectory, releasing: ReleasingAttaches): Route[] {
  return [
    {
      method: 'GET',
      path: '/containers/json',
      handler: ({ query }) => {
        const filter = parseListFilter(query.get('filters'), directory);
        const limit = intParam(query, 'limit') ?? 0;
        // As in Docker: a limit or a status filter implies stopped containers too.
        const all = boolParam(query, 'all') || limit > 0 || filter.impliesAll;
        const now = Date.now();
        const records = directory
          .list()
          .filter(isListed)
          .filter((record) => all || isRunning(record))
          .filter(filter.matches)
          .sort((a, b) => Date.parse(b.created) - Date.parse(a.created));
        return json(200, (limit > 0 ? records.slice(0, limit) : records).map((record) => listEntry(record, now)));
      },
    },
    {
      method: 'GET',
      path: '/containers/{id}/json',
      handler: ({ params }) => json(200, inspectView(releasing.view(findContainer(directory, params.id!)))),
    },
    {
      method: 'POST',
      path: '/containers/{id}/wait',
      handler: ({ params, query }) => {
        const condition = query.get('condition') || 'not-running';
        if (!isWaitCondition(condition)) {
          throw new ApiError(400, `invalid value for parameter "condition": ${JSON.stringify(condition)} (expected ${WAIT_CONDITIONS.join(', ')})`);
        }
        const record = findContainer(directory, params.id!);
        // Started before the headers go out, so a "next-exit" wait is in place
        // by the time the client sees them and goes on to start or attach.
        const body = directory.wait(record.id, condition).then(
          ({ exitCode, error }) => jsonBody({ StatusCode: exitCode, Error: error === undefined ? null : { Message: error } }),
          (error: unknown) => jsonBody({ StatusCode: -1, Error: { Message: messageOf(error) } }),
        );
        return { kind: 'deferred', status: 200, headers: { 'Content-Type': 'application/json' }, body };
      },
    },
    {
      method: 'POST',
      path: '/containers/{id}/resize',
      handler: async ({ params, query }) => {
        // A terminal size travels as 16-bit values in the kernel's winsize.
        const rows = requiredIntParam(query, 'h', { min: 0, max: 65535 });
        const cols = requiredIntParam(query, 'w', { min: 0, max: 65535 });
        const record = findContainer(directory, params.id!);
        // Docker's answer for a container that has no terminal running to resize.
        if (!isRunning(record)) throw new ApiError(409, `Container ${record.id} is not running`);
        await directory.resize(record.id, { cols, rows });
        return { kind: 'full', status: 200, headers: {}, body: '' };
      },
    },
  ];
}
