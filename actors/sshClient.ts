import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import { fromCallback } from 'xstate';
import type { ApplianceClientEvent, ApplianceSessionInput, GuestCommand, GuestCommandResult, SshClientCommand } from '../machines/sshSession.ts';
import type { Log } from '../shared/log.ts';
import {
  decodeActorStates,
  decodeContainerIds,
  decodeContainerInfo,
  decodeRequestFailure,
  encodeInspect,
  encodeKill,
  encodeNoPayload,
  encodeStop,
  encodeExec,
  REQ_EXEC,
  REQ_ACTOR_STATES,
  REQ_CONTAINER_IDS,
  REQ_CONTAINER_INFO,
  REQ_INSPECT,
  REQ_KILL,
  REQ_STOP,
  WireError,
  type ActorState,
  type ContainerInfo,
} from '../shared/wire.ts';
import type { LinkRegistry } from './links.ts';
import type { ResourceTable } from './resources.ts';
import { askGlobal, extendClient, requestGlobal } from './ssh/extension.ts';

/** Where the guests' actor states go (appliance/api/liveFeed.ts), which decides when to ask for them. */
export interface GuestStates {
  /** The link to containerVM `vm` is up; `inspect(on)` asks its guest to start or stop reporting. */
  linkUp(linkId: string, vm: string, inspect: (on: boolean) => void): void;
  report(linkId: string, states: ActorState[]): void;
  linkDown(linkId: string): void;
}

export interface SshClientOptions {
  resources: ResourceTable;
  registry: LinkRegistry;
  guestStates: GuestStates;
  /** The appliance's private key, authorized in each guest's config. */
  privateKey: string;
  /**
   * The containerVM whose host key this is, with the container and session
   * IDs assigned to it (appliance/trust.ts identifyGuest), or undefined for
   * a stranger.
   */
  identify: (hostKey: Buffer) => GuestIdentity | undefined;
  log: Log;
}

/** Who a guest is, by its host key: its containerVM and what it may report. */
export interface GuestIdentity {
  vm: string;
  assigned: string[];
}

/** What OpenSSH sends as its keepalive; any SSH server answers it, if only with a refusal. */
const KEEPALIVE_REQUEST = 'keepalive@openssh.com';

/**
 * The appliance's SSH client over one handed-off serial connection. The guest
 * must present a host key the appliance knows: that key names the
 * containerVM, and so the IDs it may report, which the machines hold it to.
 * Pushes and replies become events for the link machine.
 */
export function createSshClientActor(options: SshClientOptions) {
  return fromCallback<SshClientCommand, ApplianceSessionInput>(({ input, receive, sendBack }) => {
    const report = (event: ApplianceClientEvent) => sendBack(event);
    const stream = options.resources.get<Duplex>(input.handle);
    if (input.leftover.length > 0) stream.unshift(Buffer.from(input.leftover));
    const client = new ssh2.Client();
    let hostKey: Buffer | undefined;
    let identity: GuestIdentity | undefined;
    let closed = false;
    /** IDs a report named that the trust store did not assign to the VM when last read. */
    const looked = new Set<string>();
    /**
     * A report naming IDs not assigned to the VM when it connected: its
     * launcher may have assigned them since (it does so before it reloads
     * the VM's config), so the trust store is read again, once per such ID,
     * and what it adds goes to the machines first, which decide.
     */
    const refreshFor = (ids: readonly string[]) => {
      const unknown = ids.filter((id) => !identity?.assigned.includes(id) && !looked.has(id));
      if (!identity || unknown.length === 0) return;
      for (const id of unknown) looked.add(id);
      const fresh = options.identify(hostKey!);
      if (!fresh || fresh.vm !== identity.vm || fresh.assigned.every((id) => identity!.assigned.includes(id))) return;
      identity = fresh;
      report({ type: 'SSH_ASSIGNED', assigned: fresh.assigned });
    };
    const reportIds = (ids: string[]) => {
      refreshFor(ids);
      report({ type: 'SSH_IDS', ids });
    };
    const reportInfo = (containers: ContainerInfo[]) => {
      refreshFor(containers.map((c) => c.id));
      report({ type: 'SSH_INFO', containers });
    };
    const close = (reason: string) => {
      if (closed) return;
      closed = true;
      options.registry.delete(input.linkId);
      options.guestStates.linkDown(input.linkId);
      report({ type: 'SSH_CLOSED', reason, at: new Date().toISOString() });
    };
    // A request cut short by the connection closing is part of closing, not news.
    const failed = (what: string) => (err: Error) => options.log(closed ? 'debug' : 'warn', `${what} failed`, { link: input.linkId, error: err.message });

    extendClient(client, {
      globalRequest(name, payload) {
        try {
          if (name === REQ_CONTAINER_IDS) reportIds(decodeContainerIds(payload));
          else if (name === REQ_CONTAINER_INFO) reportInfo(decodeContainerInfo(payload));
          else if (name === REQ_ACTOR_STATES) options.guestStates.report(input.linkId, decodeActorStates(payload));
        } catch (err) {
          failed(`guest push ${name}`)(err as Error);
        }
      },
    });
    client.on('ready', () => {
      options.registry.add(input.linkId, client);
      const { vm, assigned } = identity!;
      report({ type: 'SSH_READY', vm, assigned, at: new Date().toISOString() });
      options.guestStates.linkUp(input.linkId, vm, (on) => {
        requestGlobal(client, REQ_INSPECT, encodeInspect(on))
          .then((reply) => {
            if (!reply) throw new Error('the guest refused it');
          })
          .catch(failed(`${REQ_INSPECT} ${on ? 'on' : 'off'}`));
      });
    });
    client.on('error', (err) => {
      options.log('warn', 'ssh client error', { link: input.linkId, error: err.message });
      close(`ssh: ${err.message}`);
    });
    client.on('close', () => close('ssh connection closed'));
    /** A kill, stop or exec on this link, and the guest's answer: never rejects. */
    async function carry(request: GuestCommand): Promise<GuestCommandResult> {
      const [name, payload] = request.kind === 'kill'
        ? [REQ_KILL, () => encodeKill(request)]
        : request.kind === 'stop'
          ? [REQ_STOP, () => encodeStop(request)]
          : [REQ_EXEC, () => encodeExec(request)];
      try {
        const answer = await askGlobal(client, name, payload());
        if (answer.ok) return { ok: true };
        return { ok: false, failure: decodeRequestFailure(name, answer.detail) };
      } catch (err) {
        // A value the wire cannot carry never left; anything else is the connection failing under the request.
        const kind = err instanceof WireError ? 'malformed' : 'link';
        return { ok: false, failure: { kind, message: `${name} ${request.containerId} on ${input.linkId}: ${(err as Error).message}` } };
      }
    }

    client.connect({
      sock: stream as never,
      username: 'daemon',
      privateKey: options.privateKey,
      hostVerifier: (key: Buffer) => {
        hostKey = key;
        identity = options.identify(key);
        if (!identity) options.log('warn', 'refused a guest with an unknown host key', { link: input.linkId });
        return identity !== undefined;
      },
      // The session machine gives up on a guest that stalls (machines/sshSession.ts); ssh2's own deadline only backs it up.
      readyTimeout: 60_000,
      keepaliveInterval: 0,
    });

    receive((command) => {
      switch (command.type) {
        case 'QUERY':
          // The full picture, once; the guest pushes changes after that.
          requestGlobal(client, REQ_CONTAINER_IDS, encodeNoPayload())
            .then((reply) => reply && reportIds(decodeContainerIds(reply)))
            .catch(failed('container-ids'));
          requestGlobal(client, REQ_CONTAINER_INFO, encodeNoPayload())
            .then((reply) => reply && reportInfo(decodeContainerInfo(reply)))
            .catch(failed('container-info'));
          return;
        case 'COMMAND':
          carry(command.command).then((result) => report({ type: 'SSH_COMMAND_DONE', requestId: command.requestId, result }));
          return;
        case 'KEEPALIVE': {
          // OpenSSH's own keepalive request: a refusal is an answer too. On a
          // slow line the answer may queue behind a window of output, and any
          // byte from the guest proves it alive just as well.
          let answered = false;
          const alive = () => {
            if (answered) return;
            answered = true;
            stream.off('data', alive);
            report({ type: 'SSH_ALIVE' });
          };
          stream.on('data', alive);
          requestGlobal(client, KEEPALIVE_REQUEST, encodeNoPayload())
            .then(alive)
            .catch(failed('keepalive'));
          return;
        }
        case 'END':
          close(command.reason);
          client.end();
          return;
      }
    });
    return () => {
      client.end();
      options.registry.delete(input.linkId);
      options.guestStates.linkDown(input.linkId);
    };
  });
}
