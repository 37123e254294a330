import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { descendantsOf } from '../actors/processTree.ts';
import { readJson } from '../appliance/jsonFile.ts';
import { isAlive, MONITOR_FILE, type MonitorRecord } from '../appliance/vmMonitor.ts';
import { sandboxUnsupported } from '../tools/sandbox.ts';
import { startApplianceProcess } from './support/applianceProcess.ts';
import { docker, dockerMissing, dockerProcess, eventually, psLine, startWorld, transcript, type World } from './support/world.ts';

// containerVMs outlive the appliance, as VMs outlive their management
// daemon: an appliance closed as SIGTERM closes it leaves them running, and
// the next one on the same state directory adopts them.

const skip = sandboxUnsupported() ?? dockerMissing();
if (skip) t.comment(`skipping appliance restart tests: ${skip}`);

const COUNTER = 'i=0; while :; do echo "line $i"; i=$((i+1)); sleep 0.1; done';

function monitorOf(world: Pick<World, 'stateDir'>, id: string): MonitorRecord {
  const record = readJson<MonitorRecord>(join(world.stateDir, 'containers', id, MONITOR_FILE));
  if (!record) throw new Error(`container ${id} has no monitor record`);
  return record;
}

async function inspect(world: World, name: string): Promise<Record<string, unknown>> {
  const result = await docker(world, ['inspect', name]);
  if (result.code !== 0) throw new Error(`docker inspect ${name} failed: ${result.stderr}`);
  return (JSON.parse(result.stdout) as Record<string, unknown>[])[0]!;
}

/** The numbers of the counter's lines in `text`. */
const lineNumbers = (text: string) => [...text.matchAll(/^line (\d+)$/gm)].map((m) => Number(m[1]));

t.test('after an appliance restart a running container is still running, attachable, exec-able, and its logs are whole', { skip }, async (t) => {
  const world = await startWorld(t);
  const done = await docker(world, ['run', '--name', 'done', 'host', 'sh', '-c', 'exit 3']);
  t.equal(done.code, 3, done.stderr);
  const run = await docker(world, ['run', '-d', '--name', 'counter', 'host', 'sh', '-c', COUNTER]);
  t.equal(run.code, 0, run.stderr);
  const id = run.stdout.trim();
  const before = await eventually(async () => {
    const logs = await docker(world, ['logs', 'counter']);
    return lineNumbers(logs.stdout).length >= 3 ? lineNumbers(logs.stdout) : undefined;
  }, 'three lines from the counter');

  await world.stopAppliance();
  const monitor = monitorOf(world, id);
  t.ok(isAlive(monitor.monitor), 'the monitor outlives the appliance');
  t.ok(isAlive(monitor.launcher), 'and so does the containerVM');

  await world.restartAppliance();
  t.match(await psLine(world, 'counter'), /^counter Up /, 'ps lists it running');
  t.match(await psLine(world, 'done'), /^done Exited \(3\) /, 'ps -a still lists the container that exited before the restart, with its status');
  await world.container('counter', (c) => c.state === 'running' && c.link.up);

  const exec = await docker(world, ['exec', 'counter', 'echo', 'inside again']);
  t.equal(exec.stdout, 'inside again\n', exec.stderr);

  const last = before.at(-1)!;
  const attach = dockerProcess(world, ['attach', '--no-stdin', 'counter']);
  const attached = transcript(attach.stdout);
  await eventually(() => (lineNumbers(attached.text()).some((n) => n > last) ? true : undefined), 'docker attach to show a line logged after the restart');
  attach.kill('SIGKILL');

  const after = await eventually(async () => {
    const numbers = lineNumbers((await docker(world, ['logs', 'counter'])).stdout);
    return numbers.at(-1)! > last ? numbers : undefined;
  }, 'lines logged after the restart');
  t.same(after, after.map((_, i) => i), 'docker logs has every line, from before the restart and after, in order');
});

t.test('a container that exits while the appliance is down shows its exit after the restart', { skip }, async (t) => {
  const world = await startWorld(t);
  const run = await docker(world, ['run', '-d', '--name', 'short', 'host', 'sleep', '1234567']);
  t.equal(run.code, 0, run.stderr);
  const id = run.stdout.trim();
  await world.container('short', (c) => c.state === 'running' && c.link.up);
  await world.stopAppliance();
  // Its process ends while no appliance runs: SIGKILL from the host, as the OOM killer would.
  const monitor = monitorOf(world, id);
  const sleep = descendantsOf(monitor.launcher.pid).find((pid) => readFileSync(`/proc/${pid}/cmdline`, 'latin1') === 'sleep\x001234567\x00');
  if (sleep === undefined) throw new Error('the container process is not among the containerVM launcher\'s descendants');
  process.kill(sleep, 'SIGKILL');
  await world.restartAppliance();
  // Its guest tells the new appliance once it has reconnected.
  t.match(await eventually(async () => (await psLine(world, 'short'))?.match(/^short Exited \(137\) /)?.[0], 'ps to show it exited'), 'short Exited (137) ');
  const inspect = await docker(world, ['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}} {{.State.Running}}', 'short']);
  t.equal(inspect.stdout, 'exited 137 false\n', inspect.stderr);
  // A stopped container has no processes: the appliance shuts its containerVM down.
  await eventually(() => (isAlive(monitor.monitor) ? undefined : true), 'its containerVM to be shut down');
  t.match(readJson(join(world.stateDir, 'containers', id, 'exit.json')), { status: 137, finishedAt: String }, 'its monitor recorded the exit');
});

t.test('a containerVM that ends while the appliance is down shows Exited with its status after the restart', { skip }, async (t) => {
  const world = await startWorld(t);
  const run = await docker(world, ['run', '-d', '--name', 'halted', 'host', 'sleep', '1234567']);
  t.equal(run.code, 0, run.stderr);
  const id = run.stdout.trim();
  await world.container('halted', (c) => c.state === 'running' && c.link.up);
  await world.stopAppliance();
  // TERM to its monitor, as a host shutting down would send it: the init stops the sleep, which ends by that TERM.
  const monitor = monitorOf(world, id);
  process.kill(monitor.monitor.pid, 'SIGTERM');
  await eventually(() => (isAlive(monitor.monitor) ? undefined : true), 'the monitor to end');
  await world.restartAppliance();
  t.match(await psLine(world, 'halted'), /^halted Exited \(143\) /);
  t.match(readJson(join(world.stateDir, 'containers', id, 'container.json')), { State: 'exited', ExitCode: 143 }, 'the store keeps what the new appliance learnt');
});

t.test('a containerVM whose monitor was killed while the appliance was down reads as killed, with the reason, and is gone', { skip }, async (t) => {
  const world = await startWorld(t);
  const run = await docker(world, ['run', '-d', '--name', 'orphan', 'host', 'sleep', '1234567']);
  t.equal(run.code, 0, run.stderr);
  const id = run.stdout.trim();
  await world.container('orphan', (c) => c.state === 'running' && c.link.up);
  await world.stopAppliance();
  const monitor = monitorOf(world, id);
  process.kill(monitor.monitor.pid, 'SIGKILL');
  await eventually(() => (isAlive(monitor.monitor) ? undefined : true), 'the monitor to die');
  await world.restartAppliance();
  t.match(await psLine(world, 'orphan'), /^orphan Exited \(137\) /);
  t.match(await inspect(world, 'orphan'), { State: { Status: 'exited', ExitCode: 137, Error: /its monitor \(PID \d+\) ended without recording how the containerVM ended/ } });
  await eventually(() => (isAlive(monitor.launcher) ? undefined : true), 'what was left of the containerVM to be killed');
  t.notOk(existsSync(join(world.stateDir, 'guests', `${id}.pub`)), 'its host key is trusted no more');
});

t.test('SIGTERM ends tether appliance while a docker attach and a foreground docker exec are connected; the container runs on and the next appliance adopts it', { skip }, async (t) => {
  const stateDir = join(mkdtempSync(join(tmpdir(), 'tether-sigterm-')), 'state');
  t.teardown(() => {
    // Whatever the test reached, no containerVM outlives it.
    for (const id of existsSync(join(stateDir, 'containers')) ? readdirSync(join(stateDir, 'containers')) : []) {
      const record = readJson<MonitorRecord>(join(stateDir, 'containers', id, MONITOR_FILE));
      if (record && isAlive(record.monitor)) process.kill(record.monitor.pid, 'SIGKILL');
      if (record && isAlive(record.launcher)) process.kill(record.launcher.pid, 'SIGKILL');
    }
    rmSync(join(stateDir, '..'), { recursive: true, force: true });
  });
  const first = await startApplianceProcess(t, stateDir);
  const before = { appliance: first };
  const run = await docker(before, ['run', '-d', '--name', 'ticker', 'host', 'sh', '-c', 'while :; do echo tick; sleep 1; done']);
  t.equal(run.code, 0, run.stderr);
  const id = run.stdout.trim();

  const attach = dockerProcess(before, ['attach', 'ticker']);
  const attachEnded = new Promise((resolve) => attach.on('close', resolve));
  await transcript(attach.stdout).until('tick', 'docker attach to show the output');
  const exec = dockerProcess(before, ['exec', 'ticker', 'sh', '-c', 'echo started; exec sleep 100000']);
  const execEnded = new Promise((resolve) => exec.on('close', resolve));
  await transcript(exec.stdout).until('started', 'the foreground exec to run');

  first.child.kill('SIGTERM');
  t.equal(await first.exited, 0, 'the appliance ends with its clients still connected');
  await Promise.all([attachEnded, execEnded]);
  t.pass("the attach's and the exec's connections ended with it");
  const monitor = monitorOf({ stateDir }, id);
  t.ok(isAlive(monitor.launcher), 'the containerVM runs on');

  // On the same serial port, where the containerVM's bridge reconnects.
  const second = await startApplianceProcess(t, stateDir, first.serial);
  const after = { appliance: second };
  t.match(await eventually(async () => (await psLine(after, 'ticker'))?.match(/^ticker Up /)?.[0], 'the new appliance to list it running'), 'ticker Up ');
  const again = await eventually(async () => {
    const exec = await docker(after, ['exec', 'ticker', 'echo', 'adopted']);
    return exec.code === 0 ? exec.stdout : undefined;
  }, 'docker exec through the new appliance');
  t.equal(again, 'adopted\n');
  const removed = await docker(after, ['rm', '-f', 'ticker']);
  t.equal(removed.code, 0, removed.stderr);
  second.child.kill('SIGTERM');
  t.equal(await second.exited, 0);
});
