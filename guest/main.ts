// First: it holds TERM, INT and HUP from the moment the bundle starts running.
import { reportInspectorSignal, takeOverSignals } from './heldSignals.ts';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { claimNodeChildren } from '../actors/childOwners.ts';
import { startReaper } from '../actors/reaper.ts';
import { powerOff, syncFileSystems } from '../actors/libc.ts';
import { parseGuestConfig, type GuestConfig } from '../shared/config.ts';
import { createLog } from '../shared/log.ts';
import { assembleGuest } from './assembly.ts';
import { bootGuest, type BootResult } from './boot.ts';

/**
 * The guest init bundle's entry: PID 1 of a containerVM (or of a sandbox's
 * namespaces). Its stderr is the VM's console, never the serial line (which
 * carries the handshake and SSH).
 *
 * TERM or INT: every session gets its stop signal, then SIGKILL after its
 * stop timeout; what is left is killed and reaped; file systems are synced;
 * then a VM powers off and a sandbox's init exits with the primary session's
 * status. HUP: the config file is read again (new sessions start, removed
 * ones stop).
 */
const log = createLog('guest');
reportInspectorSignal(() => log('warn', 'SIGUSR1 ignored: the guest never starts the Node inspector'));

function readConfig(path: string): GuestConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the guest config ${path}: ${(err as Error).message}`);
  }
  return parseGuestConfig(text, path);
}

const { values } = parseArgs({
  options: {
    config: { type: 'string', default: '/etc/tether/config.json' },
    // Run by `tether sandbox` in namespaces instead of booted in a VM: it exits instead of powering off.
    sandbox: { type: 'boolean', default: false },
    // Leaves zombies in place: the negative control of the reaper's tests, never for use.
    'no-reap': { type: 'boolean', default: false },
  },
});

/** Why the guest ends other than with its primary's status: it could not serve at all. */
const INIT_FAILED = 2;

async function main(): Promise<void> {
  // Before any child exists: child_process children stay their waiters' own.
  claimNodeChildren();
  const reaper = startReaper({ enabled: !values['no-reap'], log: log.child('reaper') });
  const path = values.config!;
  const config = readConfig(path);
  let boot: BootResult;
  try {
    boot = await bootGuest(config, { sandbox: values.sandbox!, configPath: path });
  } catch (err) {
    log('error', (err as Error).message);
    return end(INIT_FAILED);
  }
  for (const warning of boot.warnings) log('warn', warning);
  const guest = assembleGuest({ ...config, serial: { device: boot.serialDevice }, logDir: boot.logDir }, log, {
    whenNoChildren: reaper.whenNoChildren, ...(boot.userns === undefined ? {} : { userns: boot.userns }),
  });
  // An error that escapes an actor stops the whole actor system: every process
  // is gone and the line is closed. Carrying on as an empty shell would hide
  // that, so the guest exits and the VM (here: the sandbox) sees it.
  let failure: number | undefined;
  guest.subscribe({
    complete: () => end(failure ?? guest.getSnapshot().output?.exitCode ?? 0),
    error: (err) => {
      log('error', 'the guest machine failed; exiting', { error: err as Error, stack: (err as Error).stack });
      end(1);
    },
  });
  guest.start();
  takeOverSignals((signal) => {
    if (signal !== 'SIGHUP') {
      log('info', `${signal}: stopping every session`);
      guest.send({ type: 'SHUTDOWN' });
      return;
    }
    try {
      guest.send({ type: 'RELOAD', config: readConfig(boot.configPath) });
      log('info', `SIGHUP: read ${path} again`);
    } catch (err) {
      log('error', `SIGHUP: kept the running config: ${(err as Error).message}`);
    }
  });
  // The config checks the key's shape; ssh2 must also be able to use it, and
  // a guest that learns otherwise at its first SSH session is unreachable.
  // Checked once the container's process has started: ssh2 takes a while to load.
  try {
    (await import('../actors/ssh/keys.ts')).parseKey(config.ssh.hostKey, `ssh.hostKey in ${path}`);
  } catch (err) {
    log('error', `${(err as Error).message}: the guest cannot serve SSH; stopping`);
    failure = INIT_FAILED;
    guest.send({ type: 'SHUTDOWN' });
    return;
  }
  log('info', 'guest started', {
    id: config.id, serial: boot.serialDevice, sessions: Object.keys(config.sessions).length,
    ...(boot.userns === undefined ? {} : { usernsHostId: boot.userns.hostId }),
  });
}

/** The last steps of an init: data on disk, then the VM off (or, in a sandbox, the init's exit with the status). */
function end(exitCode: number): never {
  syncFileSystems();
  if (!values.sandbox && process.pid === 1) {
    try {
      powerOff();
    } catch (err) {
      log('error', (err as Error).message);
    }
  }
  process.exit(exitCode);
}

// The init must outlive any single bad event: report it and go on.
process.on('uncaughtException', (err) => log('error', 'uncaught exception', { error: err, stack: err.stack }));
process.on('unhandledRejection', (reason) => log('error', 'unhandled rejection', { error: reason as Error }));

// An unreadable config, or anything else that stops the start: said on the console, then the same end as any.
main().catch((err: Error) => {
  log('error', err.message);
  end(INIT_FAILED);
});
