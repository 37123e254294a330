import { randomInt } from 'node:crypto';
import { createActor } from 'xstate';
import { createProcessActor } from '../actors/process.ts';
import { ResourceTable } from '../actors/resources.ts';
import { createSerialPortActor } from '../actors/serialPort.ts';
import { createSshServerActor } from '../actors/sshServer.ts';
import { guestMachine } from '../machines/guest.ts';
import { processSessionMachine } from '../machines/processSession.ts';
import { serialLinkMachine } from '../machines/serialLink.ts';
import { guestSessionMachine } from '../machines/sshSession.ts';
import type { GuestConfig } from '../shared/config.ts';
import { createBus, logDomainEvents } from '../shared/bus.ts';
import type { Log } from '../shared/log.ts';
import { createSessionHost } from './sessionHost.ts';

/** The guest init: the guest machine with real processes, serial port and SSH server. */
export function assembleGuest(config: GuestConfig, log: Log) {
  const resources = new ResourceTable();
  const bus = createBus();
  logDomainEvents(bus, log);
  const session = createSessionHost(processSessionMachine.provide({ actors: { process: createProcessActor() } }), bus);
  const link = serialLinkMachine.provide({
    actors: {
      port: createSerialPortActor(resources),
      ssh: guestSessionMachine.provide({
        actors: { server: createSshServerActor({ resources, hostKey: config.ssh.hostKey, authorizedKeys: config.ssh.authorizedKeys, log: log.child('ssh') }) },
      }),
    },
  });
  return createActor(guestMachine.provide({ actors: { session, link } }), {
    systemId: 'guest',
    input: { config, seed: randomInt(0, 2 ** 31) },
  });
}
