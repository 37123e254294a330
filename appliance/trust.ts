import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair, publicKeyBlob } from '../actors/ssh/keys.ts';

/**
 * The appliance's trust store, a directory: its own SSH client key
 * (`appliance_key`, `appliance_key.pub`), which every guest config
 * authorizes, and the host key of each containerVM it may talk to
 * (`guests/<vm>.pub`). Whoever creates a containerVM (the sandbox launcher,
 * the QEMU launcher) registers its host key here.
 */
export function defaultStateDir(): string {
  return process.env.TETHER_STATE ?? join(process.env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state'), 'tether');
}

export interface ApplianceKey {
  privateKey: string;
  publicKey: string;
}

/** The appliance's key, made on first use. */
export function applianceKey(stateDir: string): ApplianceKey {
  const path = join(stateDir, 'appliance_key');
  if (!existsSync(path)) {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const pair = generateKeyPair('tether-appliance');
    writeFileSync(path, pair.privateKey, { mode: 0o600 });
    writeFileSync(`${path}.pub`, pair.publicKey + '\n', { mode: 0o600 });
  }
  return { privateKey: readFileSync(path, 'utf8'), publicKey: readFileSync(`${path}.pub`, 'utf8').trim() };
}

/** The containerVM's ID, as a guest config allows it (shared/config.ts). */
const VM_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

/** Records `publicKey` as the host key of containerVM `vm`. */
export function registerGuest(stateDir: string, vm: string, publicKey: string): void {
  if (!VM_NAME.test(vm)) throw new Error(`cannot register containerVM ${JSON.stringify(vm)}: the name must match ${VM_NAME}`);
  publicKeyBlob(publicKey); // refuse a malformed key now, not at connection time
  const dir = join(stateDir, 'guests');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, `${vm}.pub`), publicKey.trim() + '\n', { mode: 0o600 });
  chmodSync(dir, 0o700);
}

/** Forgets containerVM `vm`: its host key is trusted no more. */
export function unregisterGuest(stateDir: string, vm: string): void {
  rmSync(join(stateDir, 'guests', `${vm}.pub`), { force: true });
}

/**
 * Which containerVM a host key belongs to. The directory is read on every
 * call: containerVMs are registered while the appliance runs, and a
 * connection is rare enough for that to cost nothing.
 */
export function identifyGuest(stateDir: string, hostKey: Buffer): string | undefined {
  const dir = join(stateDir, 'guests');
  if (!existsSync(dir)) return undefined;
  for (const file of readdirSync(dir)) {
    if (!file.endsWith('.pub')) continue;
    try {
      if (publicKeyBlob(readFileSync(join(dir, file), 'utf8')).equals(hostKey)) return file.slice(0, -'.pub'.length);
    } catch {
      // A damaged entry trusts nobody; the others still count.
    }
  }
  return undefined;
}
