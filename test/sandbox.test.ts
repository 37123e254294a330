import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { descendantsOf } from '../actors/processTree.ts';
import { bridge } from '../actors/tcp.ts';
import { readJson } from '../appliance/jsonFile.ts';
import { assignToGuest } from '../appliance/trust.ts';
import { MONITOR_FILE, type MonitorRecord } from '../appliance/vmMonitor.ts';
import { sandboxUnsupported } from '../tools/sandbox.ts';
import { docker, dockerMissing, eventually, startWorld, transcript } from './support/world.ts';
import { shellGate } from './support/gate.ts';

// The sandbox as a containerVM: the guest is PID 1 of its own namespaces and
// behaves as an init there (stops, sweeps, reloads, exits with the status).

const unsupported = sandboxUnsupported();
if (unsupported) t.comment(`skipping the sandbox tests: ${unsupported}`);

const session = (cmd: string[], extra: Record<string, unknown> = {}) => ({ cmd, ...extra });
const vm = (id: string, sessions: Record<string, unknown>) => ({ id, name: `vm-${id}`, hostname: id, sessions });

/** The namespace's view of a host PID: the last NSpid field (1 for its init). */
function pidInside(hostPid: number): number {
  const line = readFileSync(`/proc/${hostPid}/status`, 'utf8').split('\n').find((l) => l.startsWith('NSpid:'))!;
  return Number(line.trim().split(/\s+/).at(-1));
}

t.test('the guest is PID 1 of its own pid namespace, with its own hostname', { skip: unsupported }, async (t) => {
  const world = await startWorld(t);
  const sandbox = await world.sandbox(vm('ns1', { ns1: session(['sh', '-c', 'hostname; echo $PPID; sleep 1000']) }));
  const init = await sandbox.initPid();
  t.equal(pidInside(init), 1);
  await world.container('ns1', (c) => c.state === 'running');
  const a = await world.appliance.directory.attach('ns1', { stdin: false, stdout: true, stderr: true, stream: true, logs: true });
  let seen = '';
  a.stdout!.on('data', (d: Buffer) => (seen += d));
  await eventually(() => (seen.split('\n').length >= 3 ? true : undefined), 'the hostname and PID lines');
  t.same(seen.split('\n').slice(0, 2), ['ns1', '1'], 'hostname set; the primary is a child of the init');
});

t.test("TERM to the init stops every session and the init exits with the primary's status", { skip: unsupported }, async (t) => {
  const world = await startWorld(t);
  const sandbox = await world.sandbox(vm('term1', {
    term1: session(['sh', '-c', 'trap "exit 7" TERM; while :; do sleep 0.05; done']),
    exec1: session(['sh', '-c', 'trap "" TERM; while :; do sleep 0.05; done'], { stopTimeout: 1 }),
  }));
  await world.container('exec1', (c) => c.state === 'running');
  const exited = once(sandbox.guest, 'exit');
  await sandbox.signal('SIGTERM');
  const [code] = await exited;
  t.equal(code, 7);
});

t.test('when the primary ends, a double-forked daemon that ignores TERM is killed and reaped', { skip: unsupported }, async (t) => {
  const world = await startWorld(t);
  const sandbox = await world.sandbox(vm('daemon1', {
    daemon1: session(['sh', '-c', '(setsid sh -c "trap \\"\\" TERM; exec sleep 1000" &); sleep 0.3; exit 4']),
  }));
  const init = await sandbox.initPid();
  await world.container('daemon1', (c) => c.state === 'exited');
  t.equal(world.appliance.directory.find('daemon1')!.exitCode, 4);
  const left = await eventually(() => {
    const below = descendantsOf(init).filter((pid) => pid !== init);
    return below.length === 0 ? below : undefined;
  }, 'every process below the init to be gone');
  t.same(left, []);
  t.equal(sandbox.guest.exitCode, null, 'the stopped containerVM still serves its link');
});

t.test('HUP reloads the config: a session it adds starts, one it removes stops', { skip: unsupported }, async (t) => {
  const world = await startWorld(t);
  const sandbox = await world.sandbox(vm('hup1', { hup1: session(['sleep', '1000']), old: session(['sleep', '1000']) }));
  await world.container('old', (c) => c.state === 'running');
  const doc = JSON.parse(readFileSync(sandbox.configPath, 'utf8'));
  delete doc.sessions.old;
  doc.sessions.fresh = session(['sleep', '1000']);
  writeFileSync(sandbox.configPath, JSON.stringify(doc));
  // As the launcher that changes a VM's config: the appliance refuses a session it never assigned to the VM.
  assignToGuest(world.stateDir, 'hup1', 'fresh');
  await sandbox.signal('SIGHUP');
  await world.container('fresh', (c) => c.state === 'running');
  const old = await world.container('old', (c) => c.state === 'exited');
  t.equal(old.exitCode, 143);
});

t.test('a config the guest cannot read on HUP keeps the running one', { skip: unsupported }, async (t) => {
  const world = await startWorld(t);
  const consoleFile = join(mkdtempSync(join(tmpdir(), 'tether-console-')), 'console.log');
  const sandbox = await world.sandbox(vm('hup2', { hup2: session(['sleep', '1000']) }), { console: consoleFile });
  await world.container('hup2', (c) => c.state === 'running');
  const good = readFileSync(sandbox.configPath, 'utf8');
  writeFileSync(sandbox.configPath, '{ not json');
  await sandbox.signal('SIGHUP');
  const said = await eventually(() => /SIGHUP: kept the running config: invalid guest configuration in \S+:\n\s+- not valid JSON/.exec(readFileSync(consoleFile, 'utf8'))?.[0], 'the guest to say it kept its config');
  t.ok(said, 'the guest says why it kept its config');
  // Then a good one: the init that took the bad one in its stride applies it.
  const doc = JSON.parse(good);
  doc.sessions.later = session(['sleep', '1000']);
  writeFileSync(sandbox.configPath, JSON.stringify(doc));
  assignToGuest(world.stateDir, 'hup2', 'later');
  await sandbox.signal('SIGHUP');
  await world.container('later', (c) => c.state === 'running');
  t.equal(sandbox.guest.exitCode, null, 'the init is still running');
  t.equal(world.appliance.directory.find('hup2')!.state, 'running', 'and so is the primary');
});

t.test('an exit while the link is down reaches the appliance, with its start and finish times, once the link is back', { skip: unsupported }, async (t) => {
  const world = await startWorld(t);
  const gate = shellGate();
  const sandbox = await world.sandbox(vm('down1', { down1: session(['sh', '-c', `${gate.wait}; exit 5`]) }));
  const running = await world.container('down1', (c) => c.state === 'running' && c.link.up);
  await sandbox.line!.bridge.close();
  await world.container('down1', (c) => !c.link.up);
  await gate.open();
  // The guest sees its own process end with nobody to tell.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const again = bridge({ master: sandbox.line!.master, ...world.serial });
  t.teardown(() => again.close());
  const exited = await world.container('down1', (c) => c.state === 'exited');
  t.equal(exited.exitCode, 5);
  t.equal(exited.startedAt, running.startedAt);
  t.ok(Date.parse(exited.finishedAt!) > Date.parse(exited.startedAt!), 'finished after it started');
  if (!dockerMissing()) {
    const inspect = await docker(world, ['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}} {{.State.StartedAt}} {{.State.FinishedAt}}', 'down1']);
    t.equal(inspect.stdout.trim(), `exited 5 ${exited.startedAt} ${exited.finishedAt}`);
  }
});

t.test('SIGKILL to the guest init reads as 137, where unshare(1) exits 1; an exit 1 of its own stays 1', { skip: unsupported }, async (t) => {
  const world = await startWorld(t);
  const killed = await world.sandbox(vm('kill1', { kill1: session(['sleep', '1000']) }));
  await world.container('kill1', (c) => c.state === 'running');
  process.kill(await killed.initPid(), 'SIGKILL');
  t.equal(await killed.exited, 137);

  const one = await world.sandbox(vm('one1', { one1: session(['sh', '-c', 'exit 1']) }));
  await world.container('one1', (c) => c.state === 'exited');
  await one.signal('SIGTERM');
  t.equal(await one.exited, 1, "the control: the primary's own 1");
});

t.test('docker wait reports 137 for a container whose guest init was killed with SIGKILL', { skip: unsupported || dockerMissing() }, async (t) => {
  const world = await startWorld(t);
  const run = await docker(world, ['run', '-d', 'host', 'sleep', '1000']);
  t.equal(run.code, 0, run.stderr);
  const id = run.stdout.trim();
  await world.container(id, (c) => c.state === 'running');
  const monitor = readJson<MonitorRecord>(join(world.stateDir, 'containers', id, MONITOR_FILE))!;
  const init = Number.parseInt(readFileSync(`/proc/${monitor.launcher.pid}/task/${monitor.launcher.pid}/children`, 'utf8'), 10);
  process.kill(init, 'SIGKILL');
  const waited = await docker(world, ['wait', id]);
  t.equal(waited.stdout, '137\n', waited.stderr);
});

t.test('tether sandbox leaves no guest config (it holds the private host key) in the temporary directory, whatever signal ends it, even during its start', { skip: unsupported }, async (t) => {
  const scratch = mkdtempSync(join(tmpdir(), 'tether-sandbox-cli-'));
  t.teardown(() => rmSync(scratch, { recursive: true, force: true }));
  const config = join(scratch, 'vm.json');
  writeFileSync(config, JSON.stringify(vm('cli1', { cli1: session(['sleep', '1000']) })));
  const configsIn = (temp: string) => readdirSync(temp).filter((entry) => existsSync(join(temp, entry, 'guest-config.json')));

  /** `tether sandbox` with a temporary directory of its own; `signal` once `when` holds; resolves with what is left there. */
  const endBy = async (signal: NodeJS.Signals, when: 'written' | 'running') => {
    const temp = mkdtempSync(join(scratch, 'tmp-'));
    // Nothing listens on the appliance's address: the bridge keeps trying, the guest runs.
    const sandbox = spawn(process.execPath, ['bin/tether.js', 'sandbox', '--config', config, '--appliance', 'tcp://127.0.0.1:1', '--state', join(scratch, 'state')], {
      env: { ...process.env, TMPDIR: temp },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    t.teardown(() => void sandbox.kill('SIGKILL'));
    const closed = once(sandbox, 'close');
    // Its console is the guest's: once the init says it started, it stops on TERM (before, the grace ends it with SIGKILL).
    if (when === 'running') await transcript(sandbox.stderr!).until('guest started', 'the guest init to start');
    else await eventually(() => (configsIn(temp).length > 0 ? true : undefined), 'the guest config to be written');
    sandbox.kill(signal);
    await closed;
    return readdirSync(temp);
  };
  t.same(await endBy('SIGTERM', 'running'), [], 'SIGTERM once it runs');
  t.same(await endBy('SIGHUP', 'running'), [], 'SIGHUP (its terminal closed) once it runs');
  t.same(await endBy('SIGTERM', 'written'), [], 'SIGTERM as soon as the config is written');
});
