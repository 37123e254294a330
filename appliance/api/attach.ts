/**
 * `POST /containers/{id}/attach`: everything that can fail with an HTTP
 * status (bad detach keys, unknown container, a link that stays down) fails
 * before the connection is hijacked; after that the session owns it.
 */
import type { ContainerDirectory } from './directory.ts';
import { runAttachSession } from './attachSession.ts';
import { findContainer } from './containers.ts';
import { parseDetachKeys } from './detachKeys.ts';
import type { ApiLog } from './log.ts';
import { MULTIPLEXED_STREAM, RAW_STREAM } from './multiplex.ts';
import { boolParam } from './query.ts';
import type { ReleasingAttaches } from './releasingAttaches.ts';
import type { Route } from './router.ts';

export function attachRoute(directory: ContainerDirectory, releasing: ReleasingAttaches, log: ApiLog): Route {
  return {
    method: 'POST',
    path: '/containers/{id}/attach',
    handler: async ({ params, query }) => {
      const detachKeys = parseDetachKeys(query.get('detachKeys'));
      const record = findContainer(directory, params.id!);
      // This attach is what lets a run-blocked process start (see releasingAttaches.ts).
      const releases = record.state === 'blocked';
      const attachment = await directory.attach(record.id, {
        stdin: boolParam(query, 'stdin'),
        stdout: boolParam(query, 'stdout'),
        stderr: boolParam(query, 'stderr'),
        stream: boolParam(query, 'stream'),
        logs: boolParam(query, 'logs'),
      });
      return {
        kind: 'hijack',
        contentType: attachment.tty ? RAW_STREAM : MULTIPLEXED_STREAM,
        take: (socket, head) => {
          if (releases && !socket.destroyed) socket.once('close', releasing.add(record.id));
          runAttachSession({ socket, head, attachment, detachKeys, log, label: record.name });
        },
      };
    },
  };
}
