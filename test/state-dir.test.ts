import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { privateStateDir } from '../appliance/stateDir.ts';
import { startApplianceProcess } from './support/applianceProcess.ts';
import { docker, dockerMissing, notRoot, startWorld } from './support/world.ts';

// The appliance's state directory holds keys and whole root file systems:
// private to its owner from its first moment, and nothing in it (a setuid
// program, a device node an image brought) within another user's reach.

const modeOf = (path: string) => statSync(path).mode & 0o777;

function scratch(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'tether-state-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('tether appliance makes a new state directory, its parents and what it puts there private: 0700 directories, 0600 files', async (t) => {
  const parent = scratch(t);
  const state = join(parent, 'new', 'state');
  const appliance = await startApplianceProcess(t, state);
  t.equal(modeOf(join(parent, 'new')), 0o700, 'the parent it made');
  t.equal(modeOf(state), 0o700, 'the state directory');
  t.equal(modeOf(join(state, 'images')), 0o700, 'the image store');
  t.equal(modeOf(join(state, 'appliance_key')), 0o600, 'its private key');
  t.equal(modeOf(join(state, 'appliance_key.pub')), 0o600, 'its public key');
  appliance.child.kill('SIGTERM');
  t.equal(await appliance.exited, 0);
});

t.test('a state directory is made 0700 whatever the umask', async (t) => {
  const state = join(scratch(t), 'state');
  const umask = process.umask(0o277);
  try {
    t.equal(privateStateDir(state), undefined, 'nothing to say about a directory it made');
  } finally {
    process.umask(umask);
  }
  t.equal(modeOf(state), 0o700);
});

t.test('an existing state directory that others can only read is made 0700, saying what was exposed', async (t) => {
  const state = join(scratch(t), 'state');
  mkdirSync(state, { mode: 0o755 });
  chmodSync(state, 0o755);
  t.match(privateStateDir(state), /state directory .* had mode 0755 and is 0700 now: until now other users could .*setuid programs/);
  t.equal(modeOf(state), 0o700);
  t.equal(privateStateDir(state), undefined, 'a private one passes as it is');
});

t.test('a state directory others can write to is refused and left as it is: what it holds cannot be trusted', async (t) => {
  const state = join(scratch(t), 'state');
  mkdirSync(state);
  chmodSync(state, 0o775);
  t.throws(() => privateStateDir(state), { message: /state directory .* has mode 0775: other users could write to it.*chmod 700/ });
  t.equal(modeOf(state), 0o775);
  const file = join(scratch(t), 'file');
  writeFileSync(file, '');
  t.throws(() => privateStateDir(file), { message: /cannot make the state directory .*file: EEXIST/ }, 'a file is no state directory');
});

t.test("another user's state directory is refused", { skip: notRoot() }, async (t) => {
  const state = join(scratch(t), 'state');
  mkdirSync(state, { mode: 0o700 });
  chownSync(state, 65534, 65534);
  t.throws(() => privateStateDir(state), { message: /belongs to uid 65534, not to this user \(uid 0\)/ });
});

// ---------------------------------------------------------------- images

const skip = notRoot() || dockerMissing() || (existsSync('/usr/sbin/runuser') ? false : 'needs runuser(1) from util-linux');
if (skip) t.comment(`skipping the image store's reach tests: ${skip}`);

/**
 * Runs `argv` as the user nobody. runuser, not setpriv: setpriv keeps
 * root's capabilities until its execve, so the program's path is looked up
 * as root (it ran a setuid file inside a 0700 directory of root's here).
 */
function asNobody(argv: string[]) {
  return spawnSync('runuser', ['-u', 'nobody', '--', ...argv], { encoding: 'utf8' });
}

t.test('a setuid-root program and a device node in an imported image are out of reach of other users', { skip }, async (t) => {
  // World-searchable, so that the state directory's own mode is all that stands between nobody and the store.
  const parent = scratch(t);
  chmodSync(parent, 0o755);
  const root = join(parent, 'image');
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'dev'));
  execFileSync('cp', ['/usr/bin/id', join(root, 'bin', 'id')]);
  chmodSync(join(root, 'bin', 'id'), 0o4755);
  execFileSync('mknod', ['-m', '666', join(root, 'dev', 'zero'), 'c', '1', '5']);
  const tarball = join(parent, 'image.tar');
  execFileSync('tar', ['-c', '-f', tarball, '-C', root, '.']);

  // The control: the same image where nobody can reach it gives nobody root and the device.
  const control = join(parent, 'control');
  mkdirSync(control, { mode: 0o755 });
  execFileSync('tar', ['-x', '-f', tarball, '-C', control]);
  t.equal(asNobody([join(control, 'bin', 'id'), '-u']).stdout, '0\n', 'control: the setuid program makes nobody root where nobody reaches it');
  t.equal(asNobody(['head', '-c', '4', join(control, 'dev', 'zero')]).status, 0, 'control: nobody reads the device node where nobody reaches it');

  const world = await startWorld(t, { freshStateDir: join(parent, 'state') });
  const imported = await docker(world, ['import', tarball, 'suid']);
  t.equal(imported.code, 0, imported.stderr);
  const inspected = await docker(world, ['image', 'inspect', '--format', '{{.GraphDriver.Data.Dir}}', 'suid']);
  const rootfs = inspected.stdout.trim();
  t.ok(existsSync(join(rootfs, 'bin', 'id')), 'the image holds the program');

  const run = asNobody([join(rootfs, 'bin', 'id'), '-u']);
  t.not(run.status, 0, `nobody cannot run the store's setuid program (it printed ${JSON.stringify(run.stdout)})`);
  t.match(run.stderr, /Permission denied/);
  const read = asNobody(['head', '-c', '4', join(rootfs, 'dev', 'zero')]);
  t.not(read.status, 0, "nobody cannot open the store's device node");
  t.match(read.stderr, /Permission denied/);
});
