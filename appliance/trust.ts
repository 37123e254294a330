import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair, publicKeyBlob } from '../actors/ssh/keys.ts';

/**
 * The appliance's trust store, a directory: its own SSH client key
 * (`appliance_key`, `appliance_key.pub`), which every guest config
 * authorizes, the host key of each containerVM it may talk to
 * (`guests/<vm>.pub`), and which containerVM each container and exec
 * session ID is assigned to (`guests/assigned/<id>`). Whoever creates a
 * containerVM (the sandbox launcher, the QEMU launcher) registers its host
 * key and its IDs here; the appliance adds the execs it starts. A guest's
 * host key names its VM, and the VM may report only its own IDs
 * (machines/assignments.ts).
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

/** A containerVM's or container's ID, as a guest config allows it (shared/config.ts), that is also a file name. */
const ID = /^[A-Za-z0-9_.-]{1,128}$/;
const isId = (id: string) => ID.test(id) && id !== '.' && id !== '..';

const guestsDir = (stateDir: string) => join(stateDir, 'guests');
/** `assigned/<container ID>` holds the name of the containerVM that ID is assigned to: made exclusively, so no ID is ever given to two VMs. */
const assignedDir = (stateDir: string) => join(guestsDir(stateDir), 'assigned');

/**
 * Records `publicKey` as the host key of containerVM `vm`, and `containers`
 * (the IDs of its sessions; `vm` itself, its primary, is always one) as the
 * only IDs it may report. Only a launcher calls this, for a VM it makes:
 * never because of what a guest says. Refused, with nothing recorded, when
 * `vm` is registered with another key or one of the IDs is assigned to
 * another VM; the launcher that made a VM removes its entry
 * (`unregisterGuest`) when the VM is gone.
 */
export function registerGuest(stateDir: string, vm: string, publicKey: string, containers: readonly string[]): void {
  const refuse = (why: string) => new Error(`cannot register containerVM ${JSON.stringify(vm)}: ${why}`);
  if (!isId(vm)) throw refuse(`the name must match ${ID} and be neither . nor ..`);
  const bad = containers.find((id) => !isId(id));
  if (bad !== undefined) throw refuse(`container ID ${JSON.stringify(bad)} must match ${ID} and be neither . nor ..`);
  const key = publicKeyBlob(publicKey); // refuse a malformed key now, not at connection time
  mkdirSync(assignedDir(stateDir), { recursive: true, mode: 0o700 });
  chmodSync(guestsDir(stateDir), 0o700);
  const path = join(guestsDir(stateDir), `${vm}.pub`);
  const madeKey = createExclusive(path, publicKey.trim() + '\n');
  if (!madeKey && !sameKey(path, key)) {
    throw refuse(`it is registered already, with another host key (${path}); a containerVM's launcher removes its entry when the VM is gone`);
  }
  const claimed: string[] = [];
  try {
    for (const id of new Set([vm, ...containers])) {
      if (claim(stateDir, vm, id)) claimed.push(id);
    }
  } catch (error) {
    // Nothing of a refused registration stays.
    for (const id of claimed) rmSync(join(assignedDir(stateDir), id), { force: true });
    if (madeKey) rmSync(path, { force: true });
    throw refuse((error as Error).message);
  }
}

/**
 * Assigns session `id` to containerVM `vm` as well: the appliance starts an
 * exec there. Refused when `id` is another VM's.
 */
export function assignToGuest(stateDir: string, vm: string, id: string): void {
  if (!isId(id)) throw new Error(`cannot assign session ${JSON.stringify(id)} to containerVM ${vm}: the ID must match ${ID} and be neither . nor ..`);
  mkdirSync(assignedDir(stateDir), { recursive: true, mode: 0o700 });
  try {
    claim(stateDir, vm, id);
  } catch (error) {
    throw new Error(`cannot assign session ${id} to containerVM ${vm}: ${(error as Error).message}`);
  }
}

/** Forgets containerVM `vm`: its host key is trusted no more, and the IDs assigned to it are free. */
export function unregisterGuest(stateDir: string, vm: string): void {
  rmSync(join(guestsDir(stateDir), `${vm}.pub`), { force: true });
  for (const id of assignedTo(stateDir, vm)) rmSync(join(assignedDir(stateDir), id), { force: true });
}

/**
 * Which containerVM a host key belongs to, and the IDs assigned to it. The
 * directory is read on every call: containerVMs are registered while the
 * appliance runs, and a connection is rare enough for that to cost nothing.
 */
export function identifyGuest(stateDir: string, hostKey: Buffer): { vm: string; assigned: string[] } | undefined {
  const dir = guestsDir(stateDir);
  if (!existsSync(dir)) return undefined;
  for (const file of readdirSync(dir)) {
    if (!file.endsWith('.pub')) continue;
    if (!sameKey(join(dir, file), hostKey)) continue;
    const vm = file.slice(0, -'.pub'.length);
    return { vm, assigned: assignedTo(stateDir, vm) };
  }
  return undefined;
}

/** Whether the key file at `path` holds `key`; a damaged entry trusts nobody. */
function sameKey(path: string, key: Buffer): boolean {
  try {
    return publicKeyBlob(readFileSync(path, 'utf8')).equals(key);
  } catch {
    return false;
  }
}

/** Writes a new file; false when there is one already. */
function createExclusive(path: string, text: string): boolean {
  try {
    writeFileSync(path, text, { mode: 0o600, flag: 'wx' });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/** Assigns `id` to `vm`: true when it was free, false when it was `vm`'s already; throws naming the VM that holds it. */
function claim(stateDir: string, vm: string, id: string): boolean {
  const path = join(assignedDir(stateDir), id);
  if (createExclusive(path, `${vm}\n`)) return true;
  const holder = readFileSync(path, 'utf8').trim();
  if (holder === vm) return false;
  throw new Error(`container ID ${id} is assigned to containerVM ${holder}`);
}

/** The IDs assigned to containerVM `vm`, sorted. */
function assignedTo(stateDir: string, vm: string): string[] {
  const dir = assignedDir(stateDir);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).sort().filter((id) => {
    try {
      return readFileSync(join(dir, id), 'utf8').trim() === vm;
    } catch {
      // Removed while we looked.
      return false;
    }
  });
}
