import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { sandboxUnsupported } from '../tools/sandbox.ts';
import { api, docker, dockerMissing, eventually, psLine, startWorld, type World } from './support/world.ts';

// docker start of a container that has run, restart, rename, inspect's
// create-time settings, wait and rm: the real CLI against an appliance that
// launches each container's containerVM as a sandbox.

const skip = sandboxUnsupported() ?? dockerMissing();
if (skip) t.comment(`skipping container restart tests: ${skip}`);

const inspect = async (world: World, format: string, name: string) => {
  const result = await docker(world, ['inspect', '-f', format, name]);
  if (result.code !== 0) throw new Error(`docker inspect ${name} failed: ${result.stderr}`);
  return result.stdout.trim();
};

/** Files and directories anywhere under `dir` whose name holds `text`. */
function namesHolding(dir: string, text: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((name) => name.includes(text));
}

t.test('docker start runs an exited container again; docker logs shows both runs; StartedAt moves and RestartCount stays 0 as in Docker', { skip }, async (t) => {
  const world = await startWorld(t);
  const first = await docker(world, ['run', '--name', 'twice', 'host', 'sh', '-c', 'echo "run at $(date +%s%N)"; exit 5']);
  t.equal(first.code, 5, first.stderr);
  const startedFirst = await inspect(world, '{{.State.StartedAt}}', 'twice');
  t.equal(await inspect(world, '{{.State.Status}} {{.State.ExitCode}}', 'twice'), 'exited 5');

  const again = await docker(world, ['start', '-a', 'twice']);
  t.equal(again.code, 5, again.stderr);
  t.match(again.stdout, /^run at \d+\n$/, 'start -a shows the new run');
  t.not(again.stdout, first.stdout, 'a run of its own');

  const logs = await docker(world, ['logs', 'twice']);
  t.equal(logs.stdout, first.stdout + again.stdout, 'docker logs has both runs, in order');
  t.not(await inspect(world, '{{.State.StartedAt}}', 'twice'), startedFirst);
  t.equal(await inspect(world, '{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}', 'twice'), '0 exited 5');
});

t.test('docker restart -t 1 stops a running container and starts it again', { skip }, async (t) => {
  const world = await startWorld(t);
  const run = await docker(world, ['run', '-d', '--name', 'svc', 'host', 'sh', '-c', 'echo "up $$"; exec sleep 1000']);
  t.equal(run.code, 0, run.stderr);
  await world.container('svc', (c) => c.state === 'running' && c.link.up);
  const startedFirst = await inspect(world, '{{.State.StartedAt}}', 'svc');

  const restarted = await docker(world, ['restart', '-t', '1', 'svc']);
  t.equal(restarted.code, 0, restarted.stderr);
  t.equal(restarted.stdout, 'svc\n');
  t.equal(await inspect(world, '{{.State.Status}} {{.State.Running}}', 'svc'), 'running true');
  t.not(await inspect(world, '{{.State.StartedAt}}', 'svc'), startedFirst, 'StartedAt is the new run\'s');
  const exec = await docker(world, ['exec', 'svc', 'echo', 'inside the new run']);
  t.equal(exec.stdout, 'inside the new run\n', exec.stderr);
  const logs = await eventually(async () => {
    const out = (await docker(world, ['logs', 'svc'])).stdout;
    return out.split('\n').filter(Boolean).length === 2 ? out : undefined;
  }, 'both runs in docker logs');
  t.match(logs, /^up \d+\nup \d+\n$/);

  const missing = await api(world, 'POST', '/containers/nosuch/restart');
  t.equal(missing.status, 404);
});

t.test('docker rename: the new name shows in ps and inspect and survives a restart; a name in use is 409; an unknown container 404', { skip }, async (t) => {
  const world = await startWorld(t);
  await docker(world, ['create', '--name', 'old', 'host', 'hostname']);
  await docker(world, ['create', '--name', 'taken', 'host', 'true']);

  const renamed = await docker(world, ['rename', 'old', 'new']);
  t.equal(renamed.code, 0, renamed.stderr);
  t.equal(await psLine(world, 'old'), undefined);
  t.match(await psLine(world, 'new'), /^new Created$/);
  t.equal(await inspect(world, '{{.Name}}', 'new'), '/new');

  const conflict = await api(world, 'POST', '/containers/new/rename?name=taken');
  t.equal(conflict.status, 409);
  t.match(conflict.body, { message: /The container name "\/taken" is already in use by container/ });
  const bad = await api(world, 'POST', '/containers/new/rename?name=-bad');
  t.equal(bad.status, 400);
  t.match(bad.body, { message: /Invalid container name \(-bad\)/ });
  const unknown = await docker(world, ['rename', 'nosuch', 'other']);
  t.not(unknown.code, 0);
  t.match(unknown.stderr, /No such container: nosuch/);

  // It keeps the new name once its guest reports it, and after an appliance restart.
  const started = await docker(world, ['start', '-a', 'new']);
  t.equal(started.code, 0, started.stderr);
  await world.restartAppliance();
  t.match(await psLine(world, 'new'), /^new Exited \(0\) /);
});

t.test('a container only a guest reports cannot be renamed: 409 saying why', { skip }, async (t) => {
  const world = await startWorld(t);
  await world.sandbox({ id: 'guestonly', name: 'guestonly', hostname: 'guestonly', sessions: { guestonly: { cmd: ['sleep', '1000'] } } });
  await world.container('guestonly');
  const refused = await api(world, 'POST', '/containers/guestonly/rename?name=other');
  t.equal(refused.status, 409);
  t.match(refused.body, { message: /cannot rename container guestonly: its containerVM was not created through this appliance's API/ });
});

t.test('docker inspect shows the settings a container was created with', { skip }, async (t) => {
  const world = await startWorld(t);
  const created = await docker(world, [
    'create', '--name', 'cfg', '-t', '-i', '--rm', '-e', 'A=1', '-w', '/tmp', '-u', 'nobody', '--hostname', 'box', '--stop-signal', 'SIGQUIT', '--stop-timeout', '7',
    'host', 'sh', '-c', 'true',
  ]);
  t.equal(created.code, 0, created.stderr);
  const id = created.stdout.trim();
  const view = JSON.parse((await docker(world, ['inspect', 'cfg'])).stdout)[0];
  t.match(view, {
    Id: id,
    Name: '/cfg',
    Created: String,
    Image: /^sha256:[0-9a-f]{64}$/,
    RestartCount: 0,
    State: { Status: 'created', Running: false, ExitCode: 0, StartedAt: '0001-01-01T00:00:00Z', FinishedAt: '0001-01-01T00:00:00Z', Error: '' },
    Config: {
      Image: 'host',
      Cmd: ['sh', '-c', 'true'],
      WorkingDir: '/tmp',
      User: 'nobody',
      Hostname: 'box',
      Tty: true,
      OpenStdin: true,
      StopSignal: 'SIGQUIT',
      StopTimeout: 7,
    },
    HostConfig: { AutoRemove: true },
  });
  t.ok(view.Config.Env.includes('A=1'), 'Config.Env has the -e variable');
  t.match(await psLine(world, 'cfg'), /^cfg Created$/);
  t.equal((await docker(world, ['ps', '-a', '--filter', 'name=cfg', '--format', '{{.Image}}'])).stdout, 'host\n', 'ps shows the image as given');
});

t.test('docker wait: not-running answers at once for a created container; a wait ends when its container is removed', { skip }, async (t) => {
  const world = await startWorld(t);
  await docker(world, ['create', '--name', 'idle', 'host', 'true']);
  const created = await docker(world, ['wait', 'idle']);
  t.equal(created.stdout, '0\n', `as Docker's: ${created.stderr}`);

  // next-exit on a created container waits for a run; its removal ends the wait.
  // Its headers come at once: the wait is in place before the removal.
  const nextExit = await fetch(`${world.appliance.api.replace('tcp://', 'http://')}/containers/idle/wait?condition=next-exit`, { method: 'POST' });
  const removed = await docker(world, ['rm', 'idle']);
  t.equal(removed.code, 0, removed.stderr);
  t.same(await nextExit.json(), { StatusCode: 0, Error: null });

  await docker(world, ['run', '-d', '--name', 'busy', 'host', 'sleep', '1000']);
  await world.container('busy', (c) => c.state === 'running' && c.link.up);
  // The request docker wait sends; its headers come at once, so it is in place before the removal.
  const waiting = await fetch(`${world.appliance.api.replace('tcp://', 'http://')}/containers/busy/wait?condition=next-exit`, { method: 'POST' });
  const forced = await docker(world, ['rm', '-f', 'busy']);
  t.equal(forced.code, 0, forced.stderr);
  t.match(await waiting.json(), { StatusCode: Number }, 'the wait returned, with the status the container ended with');
});

t.test('docker rm -f of a running container stops its containerVM and leaves nothing of it in the state directory', { skip }, async (t) => {
  const world = await startWorld(t);
  const run = await docker(world, ['run', '-d', '--name', 'gone', 'host', 'sh', '-c', 'echo hello; exec sleep 1000']);
  const id = run.stdout.trim();
  await world.container('gone', (c) => c.state === 'running' && c.link.up);
  t.ok(existsSync(join(world.stateDir, 'containers', id)), 'the container has its directory while it exists');
  t.not(namesHolding(world.stateDir, id).length, 0);
  const removed = await docker(world, ['rm', '-f', 'gone']);
  t.equal(removed.code, 0, removed.stderr);
  t.same(namesHolding(world.stateDir, id), [], 'no file or directory of it is left');
  t.equal((await api(world, 'GET', `/containers/${id}/json`)).status, 404);
  // Its monitor is the one process that names it (the VM's processes die with their init).
  const processes = readdirSync('/proc').filter((pid) => {
    try {
      return /^\d+$/.test(pid) && readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes(id);
    } catch {
      return false;
    }
  });
  t.same(processes, [], 'no process of its containerVM is left');
});
