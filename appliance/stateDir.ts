/**
 * The appliance's state directory holds its SSH key, the host keys it
 * trusts, whole root file systems (with their setuid programs and device
 * nodes) and every container's console and logs: private to its owner from
 * its first moment. Everything made under it is made with these modes, and
 * the directory itself is made, or checked, before anything is written there.
 */
import { chmodSync, mkdirSync, statSync } from 'node:fs';

/** The mode of every directory made under the state directory. */
export const PRIVATE_DIR = 0o700;
/** The mode of every file written under it (image contents keep their own, behind private directories). */
export const PRIVATE_FILE = 0o600;

/**
 * Makes the state directory `path` (and any missing parent) 0700, or checks
 * the one that is there:
 * - owned by another user: refused, it is theirs to change;
 * - writable by group or others: refused, anyone may have planted a trusted
 *   host key or an image in it, and no mode change undoes that;
 * - only readable or searchable by them (as earlier tethers made it):
 *   made 0700, and the returned warning says what was exposed.
 */
export function privateStateDir(path: string): string | undefined {
  let created: string | undefined;
  try {
    created = mkdirSync(path, { recursive: true, mode: PRIVATE_DIR });
  } catch (error) {
    throw new Error(`cannot make the state directory ${path}: ${(error as Error).message}`);
  }
  // Exactly 0700 whatever the umask: mkdir's mode can only be narrowed by it, never widened.
  if (created !== undefined) {
    chmodSync(path, PRIVATE_DIR);
    return undefined;
  }
  const stat = statSync(path);
  const uid = process.geteuid?.() ?? stat.uid;
  if (stat.uid !== uid) {
    throw new Error(`the state directory ${path} belongs to uid ${stat.uid}, not to this user (uid ${uid}): its owner could change the keys it trusts; use a directory of your own (--state DIR or $TETHER_STATE)`);
  }
  const mode = stat.mode & 0o777;
  if ((mode & 0o022) !== 0) {
    throw new Error(
      `the state directory ${path} has mode ${octal(mode)}: other users could write to it, so its keys, trust entries and images cannot be trusted; check its contents, then chmod 700 ${path}, or start on a new directory`,
    );
  }
  if ((mode & 0o077) === 0) return undefined;
  chmodSync(path, PRIVATE_DIR);
  return `the state directory ${path} had mode ${octal(mode)} and is 0700 now: until now other users could read its containers' logs and run what its images hold (setuid programs, device nodes)`;
}

const octal = (mode: number) => `0${mode.toString(8).padStart(3, '0')}`;
