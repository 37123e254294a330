import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { createActor, fromPromise, toPromise } from 'xstate';
import { openPtyPair, type PtyPair } from '../actors/ptyPair.ts';
import { bootMachine, type BootInput, type BootOutput, type BootStep } from '../machines/boot.ts';

// ---- the machine alone, with stand-in steps ----

type StepActor = keyof typeof bootMachine.implementations.actors;
const STEP_ACTORS: StepActor[] = [
  'preload', 'privatize', 'holdSerial', 'overlay', 'bindLogDir', 'pivotRoot', 'moveRoot',
  'mount', 'devNodes', 'exposeSerial', 'etcFiles', 'setHostname', 'loopbackUp',
];

const INPUT: BootInput = {
  pid1: true, sandbox: true, rootfs: 'host', hostname: 'web', serialDevice: '/dev/pts/7', logDir: '/var/log/tether',
};

/**
 * Runs the boot machine with steps that succeed, except where `fail` throws;
 * records each step actor's name and input in order.
 */
async function bootWith(input: Partial<BootInput>, fail: (actor: StepActor, input: unknown) => Error | undefined = () => undefined) {
  const calls: { actor: StepActor; input: unknown }[] = [];
  const outputs: Partial<Record<StepActor, unknown>> = { holdSerial: { fd: 42 }, etcFiles: { warnings: [] } };
  const actors = Object.fromEntries(STEP_ACTORS.map((name) => [name, fromPromise(async ({ input: i }: { input: unknown }) => {
    calls.push({ actor: name, input: i });
    const error = fail(name, i);
    if (error) throw error;
    return outputs[name];
  })]));
  const actor = createActor(bootMachine.provide({ actors } as never), { input: { ...INPUT, ...input } });
  const done = toPromise(actor);
  actor.start();
  return { output: (await done) as BootOutput, calls };
}

const mountTarget = (input: unknown) => (input as { target: string }).target;

t.test('the boot steps run in order: the root first, then the file systems, the serial device, /etc, host name, loopback', async (t) => {
  const { output, calls } = await bootWith({});
  t.same(output, {
    booted: true, serialDevice: '/dev/ttyS0', logDir: '/var/log/tether', warnings: [],
    done: ['privatize', 'holdSerial', 'proc', 'sys', 'dev', 'devNodes', 'devPts', 'shm', 'run', 'serial', 'etcFiles', 'hostname', 'loopback'],
  });
  t.same(calls.filter((c) => c.actor === 'mount').map((c) => mountTarget(c.input)), ['/proc', '/sys', '/dev', '/dev/pts', '/dev/shm', '/run']);
  t.same(calls.find((c) => c.actor === 'exposeSerial')?.input, { fd: 42, target: '/dev/ttyS0' }, 'the serial device held first is the one attached at /dev/ttyS0');
  t.notOk(calls.some((c) => ['preload', 'overlay', 'pivotRoot'].includes(c.actor)), 'the host root is not left, so nothing is preloaded');
});

t.test('a directory root gets an overlay, the log directory and a pivot before /proc', async (t) => {
  const { output, calls } = await bootWith({ rootfs: '/srv/root' });
  t.same(calls.slice(0, 6).map((c) => c.actor), ['preload', 'privatize', 'holdSerial', 'overlay', 'bindLogDir', 'pivotRoot']);
  t.same(calls[4]!.input, { dir: '/srv/root', logDir: '/var/log/tether' });
  t.same((calls.find((c) => c.actor === 'etcFiles')?.input as { createMissing: boolean }).createMissing, true,
    'the overlay may get /etc files the directory lacks');
  t.ok(output.booted);
});

t.test('an essential step that fails ends the boot, naming the step and the cause', async (t) => {
  const { output, calls } = await bootWith({}, (actor, input) =>
    actor === 'mount' && mountTarget(input) === '/proc' ? new Error('mount("proc", "/proc", "proc", 0xe, NULL) failed: EPERM') : undefined);
  t.same(output, {
    booted: false, step: 'proc', error: 'mount("proc", "/proc", "proc", 0xe, NULL) failed: EPERM', warnings: [],
    done: ['privatize', 'holdSerial'],
  });
  t.equal(calls.at(-1)!.actor, 'mount', 'nothing runs after the failed step');
});

t.test('a root directory that cannot be entered fails the boot at the overlay', async (t) => {
  const { output } = await bootWith({ rootfs: '/missing' }, (actor) =>
    actor === 'overlay' ? new Error("ENOENT: no such file or directory, chdir '/' -> '/missing'") : undefined);
  t.match(output, { booted: false, step: 'overlay', error: /ENOENT.*\/missing/ });
});

t.test('a non-essential step that fails gives a warning naming it, and the boot goes on', async (t) => {
  const { output } = await bootWith({}, (actor, input) =>
    (actor === 'mount' && mountTarget(input) === '/sys') || actor === 'loopbackUp' ? new Error('it broke') : undefined);
  t.ok(output.booted);
  t.same(output.warnings, ['mount sysfs on /sys: it broke', 'bring the loopback interface up: it broke']);
  t.same(output.done.slice(-4), ['run', 'serial', 'etcFiles', 'hostname']);
});

t.test('pivot_root refused with EINVAL (an initramfs root) falls back to moving the root and chroot', async (t) => {
  const { output, calls } = await bootWith({ rootfs: '/srv/root' }, (actor) =>
    actor === 'pivotRoot' ? Object.assign(new Error('pivot_root(".", ".") failed: EINVAL'), { code: 'EINVAL' }) : undefined);
  t.ok(output.booted);
  t.same(calls.slice(5, 8).map((c) => c.actor), ['pivotRoot', 'moveRoot', 'mount']);
  t.ok(output.booted && output.done.includes('moveRoot'));
});

t.test('pivot_root failing otherwise fails the boot', async (t) => {
  const { output } = await bootWith({ rootfs: '/srv/root' }, (actor) =>
    actor === 'pivotRoot' ? Object.assign(new Error('pivot_root(".", ".") failed: EBUSY'), { code: 'EBUSY' }) : undefined);
  t.match(output, { booted: false, step: 'pivot', error: /EBUSY/ });
});

t.test('with the host root, /etc files are not written when /run could not be made the guest\'s own', async (t) => {
  const { output, calls } = await bootWith({}, (actor, input) =>
    actor === 'mount' && mountTarget(input) === '/run' ? new Error('no tmpfs') : undefined);
  t.notOk(calls.some((c) => c.actor === 'etcFiles'), 'nothing is written to the host\'s /run');
  t.ok(output.booted);
  t.match(output.warnings, [/\/run/, /layer \/etc\/hostname and \/etc\/hosts: skipped/]);
});

t.test('a tcp:// serial device, and any device in a VM, passes through unchanged', async (t) => {
  for (const input of [{ serialDevice: 'tcp://10.0.0.1:2377' }, { sandbox: false, serialDevice: '/dev/ttyS0' }]) {
    const { output, calls } = await bootWith(input);
    t.match(output, { booted: true, serialDevice: input.serialDevice });
    t.notOk(calls.some((c) => c.actor === 'holdSerial' || c.actor === 'exposeSerial'));
  }
});

t.test('a VM mounts devtmpfs on /dev and a writable /sys; a sandbox a tmpfs and a read-only /sys', async (t) => {
  const mountsOf = async (sandbox: boolean) => (await bootWith({ sandbox })).calls.filter((c) => c.actor === 'mount').map((c) => c.input as { target: string; type: string; flags: string[] });
  const vm = await mountsOf(false);
  const sandbox = await mountsOf(true);
  t.equal(vm.find((m) => m.target === '/dev')?.type, 'devtmpfs');
  t.notOk(vm.find((m) => m.target === '/sys')?.flags.includes('ro'));
  t.equal(sandbox.find((m) => m.target === '/dev')?.type, 'tmpfs');
  t.ok(sandbox.find((m) => m.target === '/sys')?.flags.includes('ro'));
});

t.test('not PID 1: no step runs, and the result says why', async (t) => {
  const { output, calls } = await bootWith({ pid1: false, rootfs: '/srv/root' });
  t.same(calls, []);
  t.match(output, { booted: true, serialDevice: '/dev/pts/7', done: [], warnings: [/not PID 1/] });
});

// ---- for real, as PID 1 of fresh namespaces ----

const FIXTURE = join(import.meta.dirname, 'fixtures', 'boot', 'guest.ts');
/** Only against a hang: a boot takes well under a second. */
const DEADLINE_MS = 120_000;
const UNSHARE_PID1 = ['--pid', '--fork', '--mount', '--uts', '--ipc', '--net', '--propagation', 'private'];

const unshareFound = spawnSync('unshare', ['--version']).status === 0;
const needsRoot = process.getuid?.() !== 0
  ? `needs root to create namespaces and mount (running as uid ${process.getuid?.()})`
  : !unshareFound ? 'needs unshare (util-linux), not found on PATH' : false;
if (needsRoot) t.comment(`skipping the real boot tests: ${needsRoot}`);
const BUSYBOX = '/bin/busybox';
const needsBusybox = needsRoot || (fs.existsSync(BUSYBOX) ? false : `needs a static ${BUSYBOX} (Debian package busybox-static)`);
if (!needsRoot && needsBusybox) t.comment(`skipping the directory root test: ${needsBusybox}`);

interface Report {
  pid: number;
  result: { serialDevice: string; logDir: string; warnings: string[]; done: BootStep[] } | { error: string; name: string };
  before: { mounts: Record<string, { type: string; options: string[] }>; hostname: string };
  after: { mounts: Record<string, { type: string; options: string[] }>; hostname: string };
  devNull: boolean | { error: string };
  pty: string | { error: string };
  serialIsCharDevice?: boolean | { error: string };
  etcHostname: string | { error: string };
  etcHosts: string | { error: string };
  loFlags: number | { error: string };
  loopbackCarries: boolean;
  rootListing: string[];
  shell?: string | { error: string };
}

/** Runs the fixture under `unshare` (as PID 1 unless told otherwise) and returns its report. */
function runGuest(args: object, unshareArgs = UNSHARE_PID1): Promise<Report> {
  return new Promise((resolve, reject) => {
    const child = spawn('unshare', [...unshareArgs, '--', process.execPath, '--import', 'tsx', FIXTURE, JSON.stringify(args)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), DEADLINE_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`the guest fixture ended with ${code ?? signal}: ${stderr}`));
      try {
        resolve(JSON.parse(stdout) as Report);
      } catch {
        reject(new Error(`the guest fixture printed no report: ${stdout}${stderr}`));
      }
    });
  });
}

/** Everything the pty's master reads from now on. */
function listen(pty: PtyPair) {
  let text = '';
  pty.master.on('data', (d: Buffer) => (text += d.toString('latin1')));
  return {
    until: (expected: string) => new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the serial line never carried ${JSON.stringify(expected)}; got ${JSON.stringify(text)}`)), DEADLINE_MS);
      const check = () => {
        if (!text.includes(expected)) return;
        clearTimeout(timer);
        pty.master.off('data', check);
        resolve(text);
      };
      pty.master.on('data', check);
      check();
    }),
  };
}

function guestConfig(overrides: object) {
  return { hostname: 'guest', rootfs: 'host', logDir: '/var/log/tether', serial: { device: '/dev/ttyS0' }, ...overrides };
}

t.test('as PID 1 on the host root, the guest mounts what a VM init mounts and layers its /etc files', { skip: needsRoot }, async (t) => {
  const hostFiles = { hostname: fs.readFileSync('/etc/hostname'), hosts: fs.readFileSync('/etc/hosts') };
  const hostHostname = os.hostname();
  const pty = openPtyPair();
  t.teardown(() => pty.close());
  const line = listen(pty);
  const report = await runGuest({
    config: guestConfig({ hostname: 'guest-host', serial: { device: pty.slavePath } }),
    sandbox: true,
    serialText: 'hello through ttyS0',
  });

  t.equal(report.pid, 1);
  t.match(report.result, { serialDevice: '/dev/ttyS0', warnings: [] });
  const m = report.after.mounts;
  t.equal(m['/proc']?.type, 'proc');
  t.equal(m['/sys']?.type, 'sysfs');
  t.ok(m['/sys']?.options.includes('ro'), '/sys is read-only in a sandbox');
  t.equal(m['/dev']?.type, 'tmpfs');
  t.equal(m['/dev/pts']?.type, 'devpts');
  t.equal(m['/dev/shm']?.type, 'tmpfs');
  t.equal(m['/run']?.type, 'tmpfs');
  t.equal(report.devNull, true, '/dev/null is a character device');
  t.equal(report.pty, '/dev/pts/0', '/dev/ptmx opens a pty of the guest\'s own devpts instance');

  t.equal(report.after.hostname, 'guest-host');
  t.equal(report.etcHostname, 'guest-host\n');
  t.match(report.etcHosts, /^127\.0\.0\.1\tlocalhost$/m);
  t.match(report.etcHosts, /^127\.0\.1\.1\tguest-host$/m);
  t.same(fs.readFileSync('/etc/hostname'), hostFiles.hostname, 'the host\'s /etc/hostname is byte for byte unchanged');
  t.same(fs.readFileSync('/etc/hosts'), hostFiles.hosts, 'the host\'s /etc/hosts is byte for byte unchanged');
  t.equal(os.hostname(), hostHostname, 'the host keeps its host name');

  t.equal(typeof report.loFlags === 'number' && report.loFlags & 1, 1, 'lo is UP');
  t.equal(report.loopbackCarries, true, '127.0.0.1 carries a TCP connection');

  t.equal(report.serialIsCharDevice, true, '/dev/ttyS0 is the pty');
  await line.until('hello through ttyS0');
  t.pass('what the guest wrote to /dev/ttyS0 came out of the pty\'s master');
});

t.test('as PID 1 with a directory root, the guest runs in it, and writes stay out of the directory', { skip: needsBusybox }, async (t) => {
  const tmp = fs.mkdtempSync(join(os.tmpdir(), 'tether-boot-'));
  t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const root = join(tmp, 'root');
  fs.mkdirSync(join(root, 'bin'), { recursive: true });
  fs.mkdirSync(join(root, 'etc'));
  fs.copyFileSync(BUSYBOX, join(root, 'bin', 'busybox'));
  fs.chmodSync(join(root, 'bin', 'busybox'), 0o755);
  for (const applet of ['sh', 'cat', 'echo', 'ls']) fs.symlinkSync('busybox', join(root, 'bin', applet));
  fs.writeFileSync(join(root, 'etc', 'os-release'), 'NAME="tether busybox root"\n');
  const listing = (dir: string): string[] => fs.readdirSync(dir, { recursive: true }).map(String).sort();
  const rootBefore = listing(root);
  const logDir = join(tmp, 'logs');
  const pty = openPtyPair();
  t.teardown(() => pty.close());
  const line = listen(pty);

  const report = await runGuest({
    config: guestConfig({ hostname: 'guest-dir', rootfs: root, logDir, serial: { device: pty.slavePath } }),
    sandbox: true,
    serialText: 'hello from the busybox root',
    logFile: 'inside.log',
    probeShell: true,
  });

  t.equal(report.pid, 1);
  t.match(report.result, { serialDevice: '/dev/ttyS0', logDir, warnings: [] });
  t.same('done' in report.result && report.result.done.slice(0, 6), ['preload', 'privatize', 'holdSerial', 'overlay', 'logDir', 'pivot'],
    'the directory is entered by pivot_root');
  t.ok(report.rootListing.includes('bin') && report.rootListing.includes('etc'), '/ holds the directory\'s content');
  t.notOk(report.rootListing.includes('usr'), 'the host\'s root is out of sight');
  t.equal(report.shell, 'NAME="tether busybox root"\ninside\n', '/bin/sh of the directory runs and reads its /etc');
  t.equal(report.etcHostname, 'guest-dir\n', '/etc/hostname is made in the overlay where the directory has none');
  t.match(report.etcHosts, /^127\.0\.1\.1\tguest-dir$/m);
  t.equal(report.devNull, true);
  t.equal(report.pty, '/dev/pts/0');
  t.equal(report.after.mounts['/proc']?.type, 'proc');

  t.same(listing(root), rootBefore, 'the directory is unchanged: no mount points, /etc files or writes reached it');
  t.equal(fs.readFileSync(join(logDir, 'inside.log'), 'utf8'), 'written inside\n', 'the log directory is the host\'s, bound in');
  await line.until('hello from the busybox root');
  t.pass('the serial device reached /dev/ttyS0 inside the directory root');
});

t.test('as PID 1 with a root directory that does not exist, the boot fails naming the overlay step', { skip: needsRoot }, async (t) => {
  const report = await runGuest({ config: guestConfig({ rootfs: '/nonexistent/tether-root' }), sandbox: true });
  t.match(report.result, { name: 'BootError', error: /^boot failed at step "overlay" \(mount an overlay over the root directory\): .*\/nonexistent\/tether-root/ });
});

t.test('not PID 1, the boot mounts nothing and leaves the host name', { skip: needsRoot }, async (t) => {
  // Own mount, UTS and network namespaces all the same, so a wrong turn here could not reach the host.
  const report = await runGuest(
    { config: guestConfig({ hostname: 'never-set', rootfs: '/nonexistent', serial: { device: '/dev/pts/99' } }), sandbox: true },
    ['--mount', '--uts', '--net', '--propagation', 'private'],
  );
  t.not(report.pid, 1);
  t.match(report.result, { serialDevice: '/dev/pts/99', done: [], warnings: [/not PID 1/] });
  t.same(report.after.mounts, report.before.mounts, 'the mount table is unchanged');
  t.equal(report.after.hostname, report.before.hostname);
  t.equal(report.loopbackCarries, false, 'lo of its fresh network namespace is left down');
});
