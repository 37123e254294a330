import { randomInt } from 'node:crypto';
import { createActor } from 'xstate';
import { createOutputLogActor } from '../actors/outputLog.ts';
import { createProcessActor } from '../actors/process.ts';
import { ResourceTable } from '../actors/resources.ts';
import { createSerialPortActor } from '../actors/serialPort.ts';
import { lazyCallback } from '../actors/lazy.ts';
import { createSweeperActor } from '../actors/sweeper.ts';
import type { HeldUserns } from '../machines/boot.ts';
import type { GuestConfig } from '../shared/config.ts';
import { createBus, logDomainEvents, type Bus } from '../shared/bus.ts';
import type { Log } from '../shared/log.ts';
import { composeGuest } from './composition.ts';
import { reportActorStates } from './stateReports.ts';

export interface GuestHost {
  /** The reaper's wait for the last child (actors/reaper.ts), for the sweeper. */
  whenNoChildren(timeoutMs: number): Promise<boolean>;
  /** The container's user namespace, as the boot made it. */
  userns?: HeldUserns;
}

/** The guest init: the guest machine with real processes, serial port and SSH server. */
export function assembleGuest(config: GuestConfig, log: Log, host: GuestHost) {
  const resources = new ResourceTable();
  const bus = createBus();
  logDomainEvents(bus, log);
  const guest = createActor(
    composeGuest({
      process: createProcessActor({ security: config.security, ...(host.userns === undefined ? {} : { userns: host.userns }) }),
      port: createSerialPortActor(resources),
      // ssh2 loads when the link first reaches SSH, after the container's process has started.
      server: lazyCallback(async () => (await import('../actors/sshServer.ts')).sshServer({
        resources,
        hostKey: config.ssh.hostKey,
        authorizedKeys: config.ssh.authorizedKeys,
        // Asked for only once the guest serves SSH, so `guest` exists by then.
        actorStates: { watch: (push): (() => void) => reportActorStates(guest, push) },
        log: log.child('ssh'),
      }), (err) => log('error', 'the SSH server could not start; the link will try again', { error: err })),
      sweeper: createSweeperActor({ whenNoChildren: host.whenNoChildren }),
      outputLog: createOutputLogActor({ dir: config.logDir, capacity: config.outputLogBytes, log: log.child('outputLog') }),
    }),
    { systemId: 'guest', input: { config, seed: randomInt(0, 2 ** 31) } },
  );
  publishSessionChanges(guest, bus);
  return guest;
}

/**
 * Session changes on the bus, read off the guest's snapshots: the sessions
 * object is replaced only when one changes, so output chunks cost one compare.
 */
function publishSessionChanges(guest: ReturnType<typeof createActor<ReturnType<typeof composeGuest>>>, bus: Bus): void {
  let last = guest.getSnapshot().context.sessions;
  guest.subscribe(({ context: { sessions } }) => {
    if (sessions === last) return;
    for (const [sessionId, view] of Object.entries(sessions)) {
      if (last[sessionId] !== view) bus.emit('session.changed', { sessionId, state: view.state, exitCode: view.exitCode });
    }
    last = sessions;
  });
}
