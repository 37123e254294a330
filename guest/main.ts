import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseKey } from '../actors/ssh/keys.ts';
import { parseGuestConfig } from '../shared/config.ts';
import { createLog } from '../shared/log.ts';
import { assembleGuest } from './assembly.ts';

/**
 * The guest init bundle's entry. Its stderr is the VM's console, never the
 * serial line (which carries the handshake and SSH).
 */
const log = createLog('guest');

function main(): void {
  const { values } = parseArgs({
    options: {
      config: { type: 'string', default: '/etc/tether/config.json' },
      // Run by `tether sandbox` in namespaces instead of booted in a VM: see guest/boot.ts.
      sandbox: { type: 'boolean', default: false },
    },
  });
  const path = values.config!;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    log('error', `cannot read the guest config ${path}: ${(err as Error).message}`);
    process.exit(2);
  }
  const config = parseGuestConfig(text, path);
  // The config checks the key's shape; ssh2 must also be able to use it, and
  // a guest that learns otherwise at its first SSH session is unreachable.
  parseKey(config.ssh.hostKey, `ssh.hostKey in ${path}`);
  const guest = assembleGuest(config, log);
  // An error that escapes an actor stops the whole actor system: every process
  // is gone and the line is closed. Carrying on as an empty shell would hide
  // that, so the guest exits and the VM (here: the sandbox) sees it.
  guest.subscribe({
    error: (err) => {
      log('error', 'the guest machine failed; exiting', { error: err as Error, stack: (err as Error).stack });
      process.exit(1);
    },
  });
  guest.start();
  log('info', 'guest started', { id: config.id, serial: config.serial.device, sessions: Object.keys(config.sessions).length });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      log('info', `${signal}: stopping`);
      guest.stop();
      process.exit(0);
    });
  }
}

// The init must outlive any single bad event: report it and go on.
process.on('uncaughtException', (err) => log('error', 'uncaught exception', { error: err, stack: err.stack }));
process.on('unhandledRejection', (reason) => log('error', 'unhandled rejection', { error: reason as Error }));

try {
  main();
} catch (err) {
  log('error', (err as Error).message);
  process.exit(2);
}
