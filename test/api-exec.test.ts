import t, { type Test } from 'tap';

type Tap = Test;
import { spawn as spawnPty } from '@lydell/node-pty';
import { sandboxUnsupported } from '../tools/sandbox.ts';
import { docker, dockerMissing, eventually, startWorld, type World } from './support/world.ts';

// docker exec end to end: the real CLI against a sandboxed containerVM.

const skip = sandboxUnsupported() ?? dockerMissing();
if (skip) t.comment(`skipping docker exec tests: ${skip}`);

async function running(t: Tap, id: string): Promise<World> {
  const world = await startWorld(t);
  await world.sandbox({ id, name: id, hostname: id, sessions: { [id]: { cmd: ['sleep', '1000'] } } });
  await world.container(id, (c) => c.state === 'running');
  return world;
}

t.test('docker exec runs a command in the container: its stdout, stderr and exit code; docker ps lists the container, not the exec', { skip }, async (t) => {
  const world = await running(t, 'ex1');
  const result = await docker(world, ['exec', 'ex1', 'sh', '-c', 'echo out; echo err >&2; exit 7']);
  t.equal(result.stdout, 'out\n');
  t.equal(result.stderr, 'err\n');
  t.equal(result.code, 7);
  t.equal((await docker(world, ['ps', '-a', '--format', '{{.Names}}'])).stdout, 'ex1\n');
});

t.test('docker exec -e, -w and -u reach the process', { skip }, async (t) => {
  const world = await running(t, 'ex2');
  const env = await docker(world, ['exec', '-e', 'GREETING=hi there', '-w', '/tmp', 'ex2', 'sh', '-c', 'echo "$GREETING" "$(pwd)"']);
  t.equal(env.stdout, 'hi there /tmp\n');
  const user = await docker(world, ['exec', '-u', 'nobody', 'ex2', 'id', '-un']);
  t.equal(user.stdout, 'nobody\n');
});

t.test('docker exec of a command that does not exist fails with 127 and says why', { skip }, async (t) => {
  const world = await running(t, 'ex3');
  const result = await docker(world, ['exec', 'ex3', 'no-such-command-xyz']);
  t.equal(result.code, 127);
});

t.test('docker exec -d returns at once and the command runs', { skip }, async (t) => {
  const world = await running(t, 'ex4');
  const result = await docker(world, ['exec', '-d', 'ex4', 'sh', '-c', 'touch /tmp/detached-ran']);
  t.equal(result.code, 0);
  t.ok(await eventually(async () => ((await docker(world, ['exec', 'ex4', 'test', '-e', '/tmp/detached-ran'])).code === 0 ? true : undefined),
    'the detached command to run'));
});

t.test('50 concurrent docker exec calls each return their own exit code', { skip }, async (t) => {
  const world = await running(t, 'ex5');
  const codes = Array.from({ length: 50 }, (_, i) => i + 1);
  const results = await Promise.all(codes.map((code) => docker(world, ['exec', 'ex5', 'sh', '-c', `echo ${code}; exit ${code}`])));
  t.same(results.map((r) => r.code), codes);
  t.same(results.map((r) => r.stdout), codes.map((c) => `${c}\n`));
});

t.test('docker exec -it in a terminal: stty size prints the terminal size', { skip }, async (t) => {
  const world = await running(t, 'ex6');
  const term = spawnPty('docker', ['-H', world.appliance.api, 'exec', '-it', 'ex6', 'stty', 'size'], {
    cols: 123, rows: 37, env: { ...process.env, DOCKER_CONFIG: '/tmp/tether-docker-config-none' } as Record<string, string>,
  });
  let out = '';
  term.onData((d) => (out += d));
  const code = await new Promise<number>((resolve) => term.onExit(({ exitCode }) => resolve(exitCode)));
  t.match(out, /37 123/);
  t.equal(code, 0);
});

t.test('raw HTTP: an unknown exec is 404, a create without a command 400, on a stopped container 409', { skip }, async (t) => {
  const world = await startWorld(t);
  await world.sandbox({ id: 'ex7', name: 'ex7', hostname: 'ex7', sessions: { ex7: { cmd: ['true'] } } });
  await world.container('ex7', (c) => c.state === 'exited');
  const api = world.appliance.api.replace('tcp://', 'http://');
  const post = (path: string, body: unknown) => fetch(`${api}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  const unknown = await fetch(`${api}/exec/nope/json`);
  t.equal(unknown.status, 404);
  t.same(await unknown.json(), { message: 'No such exec instance: nope' });
  const noCmd = await post('/containers/ex7/exec', { Cmd: [] });
  t.equal(noCmd.status, 400);
  const stopped = await post('/containers/ex7/exec', { Cmd: ['true'] });
  t.equal(stopped.status, 409);
  t.match(await stopped.json(), { message: /Container ex7 is not running/ });
});
