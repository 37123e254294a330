import type ssh2 from 'ssh2';
import { fromCallback } from 'xstate';
import type { ConnectionMapEvent, LinksCommand } from '../machines/connectionMap.ts';
import { decodeContainerIds, encodeNoPayload, REQ_CONTAINER_IDS } from '../shared/wire.ts';
import { requestGlobal } from './ssh/extension.ts';

/** The live SSH clients of the appliance, by link ID. */
export class LinkRegistry {
  readonly #clients = new Map<string, ssh2.Client>();

  add(linkId: string, client: ssh2.Client): void {
    this.#clients.set(linkId, client);
  }

  delete(linkId: string): void {
    this.#clients.delete(linkId);
  }

  get(linkId: string): ssh2.Client | undefined {
    return this.#clients.get(linkId);
  }
}

/**
 * The connection map's hands on the links: a liveness check is a fresh
 * `container-ids` round trip (alive, and still carrying the ID?); a drop ends
 * the SSH connection so the guest reconnects.
 */
export function createLinksActor(registry: LinkRegistry) {
  return fromCallback<LinksCommand>(({ receive, sendBack }) => {
    const report = (event: ConnectionMapEvent) => sendBack(event);
    receive((command) => {
      const client = registry.get(command.linkId);
      if (command.type === 'DROP') {
        client?.end();
        return;
      }
      const { linkId, containerId } = command;
      if (!client) {
        report({ type: 'PING_FAILED', linkId, containerId, reason: `link ${linkId} has no SSH connection` });
        return;
      }
      ping(client).then(
        (ids) => report({ type: 'PING_REPLY', linkId, containerId, ids }),
        (err: Error) => report({ type: 'PING_FAILED', linkId, containerId, reason: err.message }),
      );
    });
  });
}

async function ping(client: ssh2.Client): Promise<string[]> {
  const reply = await requestGlobal(client, REQ_CONTAINER_IDS, encodeNoPayload());
  if (!reply) throw new Error('the guest refused container-ids');
  return decodeContainerIds(reply);
}
