import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import { fromCallback } from 'xstate';
import type { ApplianceClientEvent, ApplianceSessionInput, SshClientCommand } from '../machines/sshSession.ts';
import type { Log } from '../shared/log.ts';
import { decodeContainerIds, decodeContainerInfo, encodeNoPayload, REQ_CONTAINER_IDS, REQ_CONTAINER_INFO } from '../shared/wire.ts';
import type { LinkRegistry } from './links.ts';
import type { ResourceTable } from './resources.ts';
import { extendClient, requestGlobal } from './ssh/extension.ts';

export interface SshClientOptions {
  resources: ResourceTable;
  registry: LinkRegistry;
  /** The appliance's private key, authorized in each guest's config. */
  privateKey: string;
  /** The containerVM whose host key this is, or undefined for a stranger. */
  identify: (hostKey: Buffer) => string | undefined;
  log: Log;
}

/**
 * The appliance's SSH client over one handed-off serial connection. The guest
 * must present a host key the appliance knows: that key names the
 * containerVM. Pushes and replies become events for the link machine.
 */
export function createSshClientActor(options: SshClientOptions) {
  return fromCallback<SshClientCommand, ApplianceSessionInput>(({ input, receive, sendBack }) => {
    const report = (event: ApplianceClientEvent) => sendBack(event);
    const stream = options.resources.get<Duplex>(input.handle);
    if (input.leftover.length > 0) stream.unshift(Buffer.from(input.leftover));
    const client = new ssh2.Client();
    let vm: string | undefined;
    let closed = false;
    const close = (reason: string) => {
      if (closed) return;
      closed = true;
      options.registry.delete(input.linkId);
      report({ type: 'SSH_CLOSED', reason, at: new Date().toISOString() });
    };
    // A request cut short by the connection closing is part of closing, not news.
    const failed = (what: string) => (err: Error) => options.log(closed ? 'debug' : 'warn', `${what} failed`, { link: input.linkId, error: err.message });

    extendClient(client, {
      globalRequest(name, payload) {
        try {
          if (name === REQ_CONTAINER_IDS) report({ type: 'SSH_IDS', ids: decodeContainerIds(payload) });
          else if (name === REQ_CONTAINER_INFO) report({ type: 'SSH_INFO', containers: decodeContainerInfo(payload) });
        } catch (err) {
          failed(`guest push ${name}`)(err as Error);
        }
      },
    });
    client.on('ready', () => {
      options.registry.add(input.linkId, client);
      report({ type: 'SSH_READY', vm: vm!, at: new Date().toISOString() });
    });
    client.on('error', (err) => {
      options.log('warn', 'ssh client error', { link: input.linkId, error: err.message });
      close(`ssh: ${err.message}`);
    });
    client.on('close', () => close('ssh connection closed'));
    client.connect({
      sock: stream as never,
      username: 'daemon',
      privateKey: options.privateKey,
      hostVerifier: (key: Buffer) => {
        vm = options.identify(key);
        if (!vm) options.log('warn', 'refused a guest with an unknown host key', { link: input.linkId });
        return vm !== undefined;
      },
      // The handshake already proved a live peer; SSH's own deadline covers a guest that stalls after it.
      readyTimeout: 30_000,
      keepaliveInterval: 0,
    });

    receive(() => {
      // QUERY: the full picture, once; the guest pushes changes after that.
      requestGlobal(client, REQ_CONTAINER_IDS, encodeNoPayload())
        .then((reply) => reply && report({ type: 'SSH_IDS', ids: decodeContainerIds(reply) }))
        .catch(failed('container-ids'));
      requestGlobal(client, REQ_CONTAINER_INFO, encodeNoPayload())
        .then((reply) => reply && report({ type: 'SSH_INFO', containers: decodeContainerInfo(reply) }))
        .catch(failed('container-info'));
    });
    return () => {
      client.end();
      options.registry.delete(input.linkId);
    };
  });
}
