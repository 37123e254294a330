import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { createActor, fromPromise, toPromise } from 'xstate';
import { openPtyPair, type PtyPair } from '../actors/ptyPair.ts';
import { bootMachine, devNodes, type BootInput, type BootOutput, type BootStep, type DevNodes, type MaskSpec, type MountSpec } from '../machines/boot.ts';
import { canary, snapshot } from './support/canary.ts';

// ---- the machine alone, with stand-in steps ----

type StepActor = keyof typeof bootMachine.implementations.actors;
const STEP_ACTORS: StepActor[] = [
  'preload', 'undumpable', 'privatize', 'hold', 'userns', 'overlay', 'pivotRoot', 'moveRoot',
  'mount', 'sysctls', 'devNodes', 'masks', 'etcFiles', 'setHostname', 'loopbackUp',
];

const INPUT: BootInput = {
  pid1: true, sandbox: true, rootfs: 'host', hostname: 'web', serialDevice: '/dev/pts/7', configPath: '/run/vm/config.json',
  logDir: '/var/log/tether', privileged: false, devices: [], hide: [],
};

/** The descriptor each hold resolves with, by what it holds. */
const HELD: Record<string, number> = { '/dev/pts/7': 42, '/dev/ttyS0': 42, '/run/vm': 43, '/var/log/tether': 44 };

/**
 * Runs the boot machine with steps that succeed, except where `fail` throws;
 * records each step actor's name and input in order.
 */
async function bootWith(input: Partial<BootInput>, fail: (actor: StepActor, input: unknown) => Error | undefined = () => undefined) {
  const calls: { actor: StepActor; input: unknown }[] = [];
  const actors = Object.fromEntries(STEP_ACTORS.map((name) => [name, fromPromise(async ({ input: i }: { input: unknown }) => {
    calls.push({ actor: name, input: i });
    const error = fail(name, i);
    if (error) throw error;
    return name === 'hold' ? { fd: HELD[(i as { path: string }).path] } : name === 'userns' ? { fd: 45, lowerFd: 46 } : undefined;
  })]));
  const actor = createActor(bootMachine.provide({ actors } as never), { input: { ...INPUT, ...input } });
  const done = toPromise(actor);
  actor.start();
  return { output: (await done) as BootOutput, calls };
}

const mountTarget = (input: unknown) => (input as { target: string }).target;
const inputOf = <T>(calls: { actor: StepActor; input: unknown }[], actor: StepActor) => calls.find((c) => c.actor === actor)?.input as T;

t.test('the boot steps run in order: hold what the guest keeps, enter a fresh root, mount, mask, then /etc, host name, loopback', async (t) => {
  const { output, calls } = await bootWith({});
  t.same(output, {
    booted: true, serialDevice: '/proc/self/fd/42', configPath: '/proc/self/fd/43/config.json', logDir: '/proc/self/fd/44', warnings: [],
    done: ['preload', 'undumpable', 'privatize', 'holdSerial', 'holdConfig', 'holdLogDir', 'overlay', 'pivot',
      'proc', 'sysctls', 'sys', 'dev', 'devNodes', 'devPts', 'shm', 'run', 'masks', 'etcFiles', 'hostname', 'loopback'],
  });
  t.same(calls.filter((c) => c.actor === 'hold').map((c) => c.input), [
    { path: '/dev/pts/7', directory: false }, { path: '/run/vm', directory: false }, { path: '/var/log/tether', directory: true },
  ], 'the serial device, the config\'s directory and the log directory are held before the root changes');
  t.same(calls.filter((c) => c.actor === 'mount').map((c) => mountTarget(c.input)), ['/proc', '/sys', '/dev', '/dev/pts', '/dev/shm', '/run']);
  t.ok(calls.filter((c) => c.actor === 'mount').every((c) => (c.input as { makeTarget?: boolean }).makeTarget),
    'every mount point is made after the pivot, inside the root');
});

t.test('the host image is an overlay of the host\'s root, mounted apart and pivoted into, its devices closed', async (t) => {
  const { calls } = await bootWith({});
  t.same(inputOf(calls, 'overlay'), { lower: '/', at: '/tmp', nodev: true });
  t.same(inputOf(calls, 'pivotRoot'), { dir: '/tmp' });
});

t.test('a directory root is an overlay mounted on the directory itself', async (t) => {
  const { calls } = await bootWith({ rootfs: '/srv/root' });
  t.same(inputOf(calls, 'overlay'), { lower: '/srv/root', at: '/srv/root', nodev: true });
  t.same(inputOf(calls, 'pivotRoot'), { dir: '/srv/root' });
});

t.test('the masks: the host image hides the host\'s secrets and homes; every root gets Docker\'s masked and read-only paths', async (t) => {
  const host = inputOf<MaskSpec[]>((await bootWith({ hide: ['/var/lib/tether'] })).calls, 'masks');
  const image = inputOf<MaskSpec[]>((await bootWith({ rootfs: '/srv/root' })).calls, 'masks');
  const of = (specs: MaskSpec[], kind: MaskSpec['kind']) => specs.filter((m) => m.kind === kind).map((m) => m.path);
  for (const path of ['/root', '/home', '/tmp', '/var/tmp']) t.ok(of(host, 'empty').includes(path), `the host image shows ${path} empty`);
  for (const path of ['/etc/shadow', '/etc/ssh/ssh_host_*', '/var/lib/tether', '/proc/kcore', '/proc/keys', '/sys/firmware']) {
    t.ok(of(host, 'hide').includes(path), `the host image hides ${path}`);
  }
  t.same(of(host, 'readonly'), ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']);
  t.notOk(image.some((m) => m.path === '/root' || m.path === '/etc/shadow'), 'an image\'s own files are its own');
  t.ok(of(image, 'hide').includes('/proc/kcore'));
  t.same(of(image, 'readonly'), of(host, 'readonly'));
});

t.test('privileged lifts Docker\'s masks and device policy, and /sys is writable; the host\'s secrets stay hidden', async (t) => {
  const { calls } = await bootWith({ privileged: true });
  const masks = inputOf<MaskSpec[]>(calls, 'masks');
  t.notOk(masks.some((m) => m.path.startsWith('/proc') || m.path.startsWith('/sys')));
  t.ok(masks.some((m) => m.path === '/etc/shadow'));
  const mounts = calls.filter((c) => c.actor === 'mount').map((c) => c.input as MountSpec);
  t.equal(mounts.find((m) => m.target === '/dev')?.type, 'devtmpfs');
  t.notOk(mounts.find((m) => m.target === '/sys')?.flags.includes('ro'));
  t.same(inputOf(calls, 'devNodes'), { nodes: [], links: devNodes({ privileged: true, devices: [] }).links, exclusive: false });
  t.match(inputOf(calls, 'overlay'), { nodev: false });
});

t.test('with a user namespace, the image is seen through it and what the guest mounts for the container is its root\'s', async (t) => {
  const userns = { hostId: 0x70000000, size: 65536 };
  const { output, calls } = await bootWith({ userns, devices: [{ path: '/dev/kmsg', type: 'c', major: 1, minor: 11, uid: 0, gid: 4 }] });
  t.match(output, { booted: true, userns: { fd: 45, hostId: 0x70000000, size: 65536 }, warnings: [] });
  t.same(output.done.slice(5, 9), ['holdLogDir', 'initialProc', 'userns', 'overlay']);
  t.equal(mountTarget(calls.find((c) => c.actor === 'mount')!.input), '/proc', 'the guest\'s own /proc comes first: the namespace\'s maps are written through it');
  t.same(inputOf(calls, 'userns'), { ...userns, lower: '/' });
  t.same(inputOf(calls, 'overlay'), { lower: '/', lowerFd: 46, at: '/tmp', nodev: true }, 'the overlay\'s lower layer is the idmapped image');
  const data = (target: string) => (calls.find((c) => c.actor === 'mount' && mountTarget(c.input) === target && c !== calls.find((d) => d.actor === 'mount'))!.input as MountSpec).data;
  t.equal(data('/dev'), 'mode=0755,size=65536k,uid=1879048192,gid=1879048192');
  t.equal(data('/dev/pts'), 'newinstance,ptmxmode=0666,mode=0620,gid=1879048197,uid=1879048192', 'new ptys are root:tty inside');
  t.equal(data('/dev/shm'), 'mode=1777,size=65536k,uid=1879048192,gid=1879048192');
  t.equal(data('/run'), 'mode=0755,uid=1879048192,gid=1879048192');
  t.same(inputOf<DevNodes>(calls, 'devNodes').nodes.map((n) => [n.path, n.uid, n.gid]).slice(-2), [['/dev/tty', 0x70000000, 0x70000000], ['/dev/kmsg', 0x70000000, 0x70000004]]);
  t.equal(inputOf<{ owner: number }>(calls, 'etcFiles').owner, 0x70000000);
});

t.test('a user namespace the kernel refuses is a warning: the container keeps the guest\'s IDs, and nothing is owned by the unused range', async (t) => {
  for (const refused of ['userns', 'initialProc'] as const) {
    let procs = 0;
    // Only the first /proc, the initial root's, fails.
    const { output, calls } = await bootWith({ userns: { hostId: 0x70000000, size: 65536 } }, (actor, input) =>
      (refused === 'userns' ? actor === 'userns' : actor === 'mount' && mountTarget(input) === '/proc' && procs++ === 0)
        ? new Error('EPERM') : undefined);
    t.ok(output.booted && output.userns === undefined, `${refused} refused: no user namespace`);
    t.match(output.warnings, [/^(give the container a user namespace|mount proc on the initial root's \/proc).*: EPERM$/]);
    t.same(inputOf(calls, 'overlay'), { lower: '/', at: '/tmp', nodev: true });
    t.equal(inputOf<{ owner: number }>(calls, 'etcFiles').owner, 0);
    t.notOk(calls.some((c) => c.actor === 'mount' && /uid=/.test((c.input as MountSpec).data ?? '')));
  }
});

t.test('Docker\'s network settings are written in the guest\'s own network namespace only, and their failure is a warning', async (t) => {
  const own = await bootWith({}, (actor) => (actor === 'sysctls' ? new Error('EROFS') : undefined));
  t.same(inputOf(own.calls, 'sysctls'), [
    { key: 'net/ipv4/ip_unprivileged_port_start', value: '0' }, { key: 'net/ipv4/ping_group_range', value: '0 2147483647' },
  ]);
  t.match(own.output, { booted: true, warnings: ['let every user bind ports below 1024 and ping, as Docker does: EROFS'] });
  const shared = await bootWith({ serialDevice: 'tcp://127.0.0.1:2377' });
  t.notOk(shared.calls.some((c) => c.actor === 'sysctls'), 'a sandbox on TCP shares the host\'s network namespace');
  const vm = await bootWith({ sandbox: false, serialDevice: 'tcp://10.0.0.1:2377' });
  t.ok(vm.calls.some((c) => c.actor === 'sysctls'), 'a VM\'s is its own');
});

t.test('a container\'s /dev has Docker\'s default nodes and its --device nodes, and nothing else opens', async (t) => {
  const kmsg = { path: '/dev/kmsg', type: 'c' as const, major: 1, minor: 11 };
  const { calls } = await bootWith({ devices: [kmsg] });
  const dev = inputOf<DevNodes>(calls, 'devNodes');
  t.same(dev.nodes.map((n) => n.path), ['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom', '/dev/tty', '/dev/kmsg']);
  t.equal(dev.exclusive, true);
  const mounts = calls.filter((c) => c.actor === 'mount').map((c) => c.input as MountSpec);
  t.equal(mounts.find((m) => m.target === '/dev')?.type, 'tmpfs');
  t.ok(mounts.find((m) => m.target === '/sys')?.flags.includes('ro'), '/sys is read-only');
});

t.test('an essential step that fails ends the boot, naming the step and the cause', async (t) => {
  const { output, calls } = await bootWith({}, (actor, input) =>
    actor === 'mount' && mountTarget(input) === '/proc' ? new Error('mount("proc", "/proc", "proc", 0xe, NULL) failed: EPERM') : undefined);
  t.same(output, {
    booted: false, step: 'proc', error: 'mount("proc", "/proc", "proc", 0xe, NULL) failed: EPERM', warnings: [],
    done: ['preload', 'undumpable', 'privatize', 'holdSerial', 'holdConfig', 'holdLogDir', 'overlay', 'pivot'],
  });
  t.equal(calls.at(-1)!.actor, 'mount', 'nothing runs after the failed step');
});

t.test('a mask that cannot be applied fails the boot: the container would see what it must not', async (t) => {
  const { output } = await bootWith({}, (actor) => (actor === 'masks' ? new Error('hide /proc/kcore: EPERM') : undefined));
  t.match(output, { booted: false, step: 'masks', error: /kcore/ });
});

t.test('a root directory that cannot be entered fails the boot at the overlay', async (t) => {
  const { output } = await bootWith({ rootfs: '/missing' }, (actor) =>
    actor === 'overlay' ? new Error("ENOENT: no such file or directory, chdir '/' -> '/missing'") : undefined);
  t.match(output, { booted: false, step: 'overlay', error: /ENOENT.*\/missing/ });
});

t.test('a non-essential step that fails gives a warning naming it, and the boot goes on', async (t) => {
  const { output } = await bootWith({}, (actor, input) =>
    (actor === 'mount' && mountTarget(input) === '/dev/shm') || actor === 'loopbackUp' ? new Error('it broke') : undefined);
  t.ok(output.booted);
  t.same(output.warnings, ['mount tmpfs on /dev/shm: it broke', 'bring the loopback interface up: it broke']);
  t.same(output.done.slice(-4), ['run', 'masks', 'etcFiles', 'hostname']);
});

t.test('a log directory or a config directory that cannot be held fails the boot: inside the container\'s root its processes could forge the logs, or write the config a SIGHUP reads', async (t) => {
  const logs = await bootWith({}, (actor, input) =>
    actor === 'hold' && (input as { path: string }).path === '/var/log/tether' ? new Error('EACCES') : undefined);
  t.match(logs.output, { booted: false, step: 'holdLogDir', error: 'EACCES' });
  const config = await bootWith({}, (actor, input) =>
    actor === 'hold' && (input as { path: string }).path === '/run/vm' ? new Error('ENOENT') : undefined);
  t.match(config.output, { booted: false, step: 'holdConfig', error: 'ENOENT' });
});

t.test('a serial device that cannot be held fails the boot: the guest would be unreachable', async (t) => {
  const { output } = await bootWith({}, (actor, input) =>
    actor === 'hold' && (input as { path: string }).path === '/dev/pts/7' ? new Error('ENOENT') : undefined);
  t.match(output, { booted: false, step: 'holdSerial' });
});

t.test('pivot_root refused with EINVAL (an initramfs root) falls back to moving the root and chroot', async (t) => {
  const { output, calls } = await bootWith({ rootfs: '/srv/root' }, (actor) =>
    actor === 'pivotRoot' ? Object.assign(new Error('pivot_root(".", ".") failed: EINVAL'), { code: 'EINVAL' }) : undefined);
  t.ok(output.booted);
  t.same(calls.slice(7, 10).map((c) => c.actor), ['pivotRoot', 'moveRoot', 'mount']);
  t.ok(output.booted && output.done.includes('moveRoot'));
});

t.test('pivot_root failing otherwise fails the boot', async (t) => {
  const { output } = await bootWith({ rootfs: '/srv/root' }, (actor) =>
    actor === 'pivotRoot' ? Object.assign(new Error('pivot_root(".", ".") failed: EBUSY'), { code: 'EBUSY' }) : undefined);
  t.match(output, { booted: false, step: 'pivot', error: /EBUSY/ });
});

t.test('a tcp:// serial device passes through unchanged', async (t) => {
  const { output, calls } = await bootWith({ serialDevice: 'tcp://10.0.0.1:2377' });
  t.match(output, { booted: true, serialDevice: 'tcp://10.0.0.1:2377' });
  t.notOk(calls.some((c) => c.actor === 'hold' && (c.input as { path: string }).path.startsWith('tcp')));
});

t.test('a VM mounts devtmpfs on its initial root first, to hold its serial port; the container\'s /dev is the same as a sandbox\'s', async (t) => {
  const { output, calls } = await bootWith({ sandbox: false, serialDevice: '/dev/ttyS0' });
  t.same(calls.slice(3, 5).map((c) => [c.actor, (c.input as { target?: string; path?: string }).target ?? (c.input as { path: string }).path]),
    [['mount', '/dev'], ['hold', '/dev/ttyS0']]);
  t.equal((calls[3]!.input as MountSpec).type, 'devtmpfs');
  t.match(output, { booted: true, serialDevice: '/proc/self/fd/42' });
  const devs = calls.filter((c) => c.actor === 'mount' && mountTarget(c.input) === '/dev').map((c) => (c.input as MountSpec).type);
  t.same(devs, ['devtmpfs', 'tmpfs'], 'the container\'s /dev is a tmpfs of allowed nodes, as in a sandbox');
});

t.test('not PID 1: no step runs, and the result says why', async (t) => {
  const { output, calls } = await bootWith({ pid1: false, rootfs: '/srv/root' });
  t.same(calls, []);
  t.match(output, { booted: true, serialDevice: '/dev/pts/7', configPath: '/run/vm/config.json', done: [], warnings: [/not PID 1/] });
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
  result: { serialDevice: string; configPath: string; logDir: string; warnings: string[]; done: BootStep[] } | { error: string; name: string };
  before: { mounts: Record<string, { type: string; options: string[] }>; hostname: string };
  after: { mounts: Record<string, { type: string; options: string[] }>; hostname: string };
  devNull: boolean | { error: string };
  pty: string | { error: string };
  serialIsCharDevice?: boolean | { error: string };
  configReadable?: boolean | { error: string };
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
  return {
    hostname: 'guest', rootfs: 'host', logDir: '/var/log/tether', serial: { device: '/dev/ttyS0' }, hide: [],
    security: { privileged: false, devices: [] }, ...overrides,
  };
}

/** A temporary directory for one test: its config document and logs (under /tmp, which the host image hides). */
function scratch(t: Test) {
  const dir = fs.mkdtempSync(join(os.tmpdir(), 'tether-boot-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const configPath = join(dir, 'guest-config.json');
  fs.writeFileSync(configPath, '{"a": "config"}\n');
  return { dir, configPath, logDir: join(dir, 'logs') };
}

t.test('as PID 1 on the host image, the guest mounts what a VM init mounts and layers its /etc files', { skip: needsRoot }, async (t) => {
  const hostFiles = { hostname: fs.readFileSync('/etc/hostname'), hosts: fs.readFileSync('/etc/hosts') };
  const hostHostname = os.hostname();
  const { configPath, logDir } = scratch(t);
  const pty = openPtyPair();
  t.teardown(() => pty.close());
  const line = listen(pty);
  const report = await runGuest({
    config: guestConfig({ hostname: 'guest-host', logDir, serial: { device: pty.slavePath } }),
    configPath,
    sandbox: true,
    serialText: 'hello through the held serial device',
    logFile: 'inside.log',
  });

  t.equal(report.pid, 1);
  t.match(report.result, { serialDevice: /^\/proc\/self\/fd\/\d+$/, logDir: /^\/proc\/self\/fd\/\d+$/, warnings: [] });
  const m = report.after.mounts;
  t.equal(m['/']?.type, 'overlay', 'the root is an overlay, not the host\'s file system');
  t.equal(m['/proc']?.type, 'proc');
  t.equal(m['/sys']?.type, 'sysfs');
  t.ok(m['/sys']?.options.includes('ro'), '/sys is read-only');
  t.equal(m['/dev']?.type, 'tmpfs');
  t.ok(m['/dev']?.options.includes('nodev'), '/dev holds no node but the ones bound in');
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

  t.equal(report.serialIsCharDevice, true, 'the held serial device is the pty');
  t.equal(report.configReadable, true, 'the config document can be read again after the root changed');
  t.equal(fs.readFileSync(join(logDir, 'inside.log'), 'utf8'), 'written inside\n', 'the log directory is the host\'s, held');
  await line.until('hello through the held serial device');
  t.pass('what the guest wrote to its serial device came out of the pty\'s master');
});

t.test('the host image is a read-only view: a root shell changes nothing on the host and sees none of its secrets or mounts', { skip: needsRoot }, async (t) => {
  const { dir, configPath, logDir } = scratch(t);
  const host = canary(t);
  const before = snapshot(host);
  const secrets = fs.mkdtempSync('/var/lib/tether-state-');
  t.teardown(() => fs.rmSync(secrets, { recursive: true, force: true }));
  fs.writeFileSync(join(secrets, 'appliance_key'), 'PRIVATE\n', { mode: 0o600 });
  const pty = openPtyPair();
  t.teardown(() => pty.close());
  const shell = [
    `cat ${host}/file`, `echo overwritten > ${host}/file`, `rm -rf ${host}/sub`, `touch ${host}/new`, `rm -rf ${host}/*`,
    'echo ---', `cat ${secrets}/appliance_key`, `ls -A ${dir}`, 'ls -A /tmp /root', 'wc -c < /etc/shadow',
    'echo ---', 'grep -c ttyS0 /proc/self/mountinfo', 'ls /dev', 'echo ---', 'umount -l /proc', 'ls -A /proc | wc -l', 'true',
  ].join('; ');
  const report = await runGuest({
    config: guestConfig({ logDir, serial: { device: pty.slavePath }, hide: [secrets] }),
    configPath, sandbox: true, shell,
  });
  t.match(report.result, { warnings: [] });
  const [writes, secretsSeen, devices, proc] = String(report.shell).split('---\n');
  t.equal(writes, 'the host\'s own\n', 'the container saw the host\'s file, and its writes and removals went without error');
  t.same(snapshot(host), before, 'the host\'s files are unchanged');
  t.match(secretsSeen, /appliance_key: No such file or directory/, 'the hidden state directory is empty');
  t.match(secretsSeen, new RegExp(`${dir}'?: No such file or directory`), 'the host\'s /tmp is not the container\'s');
  t.match(secretsSeen, /^\/root:\n\n/m, 'root\'s home is empty');
  t.match(secretsSeen, /^0\n/m, '/etc/shadow is empty');
  t.equal(devices, '0\nfd\nfull\nnull\nptmx\npts\nrandom\nshm\nstderr\nstdin\nstdout\ntty\nurandom\nzero\n',
    'no serial device in the tree, and /dev holds Docker\'s nodes alone');
  t.equal(proc, '0\n', 'under /proc there is nothing of the host: the old root is detached');
});

t.test('Docker\'s masks and device policy hold against a root shell; privileged and --device lift them', { skip: needsRoot }, async (t) => {
  const { configPath, logDir } = scratch(t);
  const shell = [
    'wc -c < /proc/timer_list', 'ls -A /sys/firmware | wc -l', 'echo core > /proc/sys/kernel/core_pattern && echo written',
    'echo 3 > /proc/sys/vm/drop_caches && echo dropped', 'mknod /dev/made c 1 11 && (exec 3</dev/made) && echo opened',
    'mknod /made c 1 11 && (exec 3</made) && echo opened too', '(exec 3</dev/kmsg) && echo kmsg opened', 'true',
  ].join('; ');
  const confined = await runGuest({ config: guestConfig({ logDir, serial: { device: 'tcp://127.0.0.1:9' } }), configPath, sandbox: true, shell });
  const output = String(confined.shell);
  t.match(output, /^0\n0\n/, '/proc/timer_list reads nothing and /sys/firmware is empty');
  t.match(output, /core_pattern: Read-only file system/);
  t.match(output, /drop_caches: Read-only file system/);
  t.notMatch(output, /written|dropped|opened/, 'no kernel knob written, and no node made in the container opens');
  t.match(output, /\/dev\/made: Permission denied/);
  t.match(output, /\/made: Permission denied/);

  const kmsg = { path: '/dev/kmsg', type: 'c', major: 1, minor: 11 };
  const given = await runGuest({
    config: guestConfig({ logDir, serial: { device: 'tcp://127.0.0.1:9' }, security: { privileged: false, devices: [kmsg] } }),
    configPath, sandbox: true, shell: '(exec 3</dev/kmsg) && echo kmsg opened; true',
  });
  t.equal(given.shell, 'kmsg opened\n', 'a --device node opens');

  const privileged = await runGuest({
    config: guestConfig({ logDir, serial: { device: 'tcp://127.0.0.1:9' }, security: { privileged: true, devices: [] } }),
    configPath, sandbox: true, shell: 'grep -c -e " /proc/kcore " -e " /sys/firmware " /proc/self/mountinfo; (exec 3</dev/kmsg) && echo kmsg opened; true',
  });
  t.equal(privileged.shell, '0\nkmsg opened\n', 'privileged: /proc and /sys unmasked, the machine\'s devices there');
});

t.test('as PID 1 with a directory root, the guest runs in it, and writes stay out of the directory', { skip: needsBusybox }, async (t) => {
  const { dir: tmp, configPath, logDir } = scratch(t);
  const root = join(tmp, 'root');
  fs.mkdirSync(join(root, 'bin'), { recursive: true });
  fs.mkdirSync(join(root, 'etc'));
  fs.copyFileSync(BUSYBOX, join(root, 'bin', 'busybox'));
  fs.chmodSync(join(root, 'bin', 'busybox'), 0o755);
  for (const applet of ['sh', 'cat', 'echo', 'ls']) fs.symlinkSync('busybox', join(root, 'bin', applet));
  fs.writeFileSync(join(root, 'etc', 'os-release'), 'NAME="tether busybox root"\n');
  const listing = (dir: string): string[] => fs.readdirSync(dir, { recursive: true }).map(String).sort();
  const rootBefore = listing(root);
  const pty = openPtyPair();
  t.teardown(() => pty.close());
  const line = listen(pty);

  const report = await runGuest({
    config: guestConfig({ hostname: 'guest-dir', rootfs: root, logDir, serial: { device: pty.slavePath } }),
    configPath,
    sandbox: true,
    serialText: 'hello from the busybox root',
    logFile: 'inside.log',
    shell: 'cat /etc/os-release; echo inside > /etc/written-inside; cat /etc/written-inside',
  });

  t.equal(report.pid, 1);
  t.match(report.result, { serialDevice: /^\/proc\/self\/fd\/\d+$/, warnings: [] });
  t.same('done' in report.result && report.result.done.slice(0, 8),
    ['preload', 'undumpable', 'privatize', 'holdSerial', 'holdConfig', 'holdLogDir', 'overlay', 'pivot'],
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
  t.equal(fs.readFileSync(join(logDir, 'inside.log'), 'utf8'), 'written inside\n', 'the log directory is the host\'s, held');
  await line.until('hello from the busybox root');
  t.pass('the serial device reached the guest inside the directory root');
});

t.test('an image\'s absolute symbolic links resolve inside its root: nothing is made on the host, and the logs are kept', { skip: needsBusybox }, async (t) => {
  const { dir: tmp, configPath } = scratch(t);
  const host = canary(t);
  const root = join(tmp, 'root');
  fs.mkdirSync(join(root, 'bin'), { recursive: true });
  fs.copyFileSync(BUSYBOX, join(root, 'bin', 'sh'));
  for (const name of ['tmp', 'var']) fs.symlinkSync(join(host, `made-by-${name}`), join(root, name));
  const before = snapshot(host);
  // A log directory whose path, read inside the image, goes through its /var link.
  const logDir = join(tmp, 'var', 'log');
  const report = await runGuest({
    config: guestConfig({ rootfs: root, logDir, serial: { device: 'tcp://127.0.0.1:9' } }), configPath, sandbox: true, logFile: 'inside.log',
  });
  t.match(report.result, { warnings: [] });
  t.ok('done' in report.result, 'the guest booted');
  t.same(snapshot(host), before, 'no directory appeared where the image\'s links point on the host');
  t.equal(fs.readFileSync(join(logDir, 'inside.log'), 'utf8'), 'written inside\n', 'the logs reach the host\'s log directory');
});

t.test('as PID 1 with a root directory that does not exist, the boot fails naming the overlay step', { skip: needsRoot }, async (t) => {
  const { configPath } = scratch(t);
  const report = await runGuest({ config: guestConfig({ rootfs: '/nonexistent/tether-root', serial: { device: 'tcp://127.0.0.1:9' } }), configPath, sandbox: true });
  t.match(report.result, { name: 'BootError', error: /^boot failed at step "overlay" \(mount the container's root: .*\/nonexistent\/tether-root/ });
});

t.test('not PID 1, the boot mounts nothing and leaves the host name', { skip: needsRoot }, async (t) => {
  const { configPath } = scratch(t);
  // Own mount, UTS and network namespaces all the same, so a wrong turn here could not reach the host.
  const report = await runGuest(
    { config: guestConfig({ hostname: 'never-set', rootfs: '/nonexistent', serial: { device: '/dev/pts/99' } }), configPath, sandbox: true },
    ['--mount', '--uts', '--net', '--propagation', 'private'],
  );
  t.not(report.pid, 1);
  t.match(report.result, { serialDevice: '/dev/pts/99', done: [], warnings: [/not PID 1/] });
  t.same(report.after.mounts, report.before.mounts, 'the mount table is unchanged');
  t.equal(report.after.hostname, report.before.hostname);
  t.equal(report.loopbackCarries, false, 'lo of its fresh network namespace is left down');
});
