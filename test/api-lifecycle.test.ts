import t from 'tap';
import { sandboxUnsupported } from '../tools/sandbox.ts';
import { api, docker, dockerMissing, eventually, psLine, startWorld } from './support/world.ts';

// docker create, start, run and rm end to end: the real CLI against an
// appliance that launches each container's containerVM as a sandbox.

const skip = sandboxUnsupported() ?? dockerMissing();
if (skip) t.comment(`skipping container lifecycle tests: ${skip}`);

t.test('docker run --rm host echo hi prints hi, returns 0 and leaves no container', { skip }, async (t) => {
  const world = await startWorld(t);
  const result = await docker(world, ['run', '--rm', '--name', 'r1', 'host', 'echo', 'hi']);
  t.equal(result.stdout, 'hi\n', result.stderr);
  t.equal(result.code, 0);
  t.ok(await eventually(() => (world.appliance.directory.find('r1') ? undefined : true), 'r1 to be removed'));
});

t.test('docker run returns the exit code of the container process', { skip }, async (t) => {
  const world = await startWorld(t);
  const result = await docker(world, ['run', 'host', 'sh', '-c', 'echo out; echo err >&2; exit 42']);
  t.equal(result.stdout, 'out\n');
  t.equal(result.stderr, 'err\n');
  t.equal(result.code, 42);
});

t.test('docker run --rm returns the exit code of the container process once it is removed', { skip }, async (t) => {
  const world = await startWorld(t);
  const result = await docker(world, ['run', '--rm', '--name', 'rm42', 'host', 'sh', '-c', 'exit 42']);
  t.equal(result.code, 42, result.stderr);
  t.equal(world.appliance.directory.find('rm42'), undefined, 'the wait for its removal ended with the removal');
});

t.test('docker run passes -e, -w, -u and --hostname to the process', { skip }, async (t) => {
  const world = await startWorld(t);
  const result = await docker(world, [
    'run', '--rm', '-e', 'GREETING=hi there', '-w', '/tmp', '-u', 'nobody', '--hostname', 'box1', '--stop-signal', 'SIGQUIT', '--stop-timeout', '3',
    'host', 'sh', '-c', 'echo "$GREETING" "$(pwd)" "$(id -un)" "$(hostname)"',
  ]);
  t.equal(result.stdout, 'hi there /tmp nobody box1\n', result.stderr);
  t.equal(result.code, 0);
});

t.test('docker run -i passes stdin to the process', { skip }, async (t) => {
  const world = await startWorld(t);
  const result = await docker(world, ['run', '--rm', '-i', 'host', 'cat'], 'through stdin\n');
  t.equal(result.stdout, 'through stdin\n', result.stderr);
  t.equal(result.code, 0);
});

t.test('docker run -t runs the process on a terminal', { skip }, async (t) => {
  const world = await startWorld(t);
  const result = await docker(world, ['run', '--rm', '-t', 'host', 'sh', '-c', 'test -t 1 && echo on a tty']);
  t.equal(result.stdout, 'on a tty\r\n', result.stderr);
  t.equal(result.code, 0);
});

t.test('docker create shows Created; start makes it Up; rm is refused while it runs; rm -f removes it', { skip }, async (t) => {
  const world = await startWorld(t);
  const created = await docker(world, ['create', '--name', 'web', 'host', 'sleep', '1000']);
  t.equal(created.code, 0, created.stderr);
  t.match(created.stdout, /^[0-9a-f]{64}\n$/);
  t.match(await psLine(world, 'web'), /^web Created$/);
  const inspect = await docker(world, ['inspect', '-f', '{{.State.Status}} {{.Name}}', 'web']);
  t.equal(inspect.stdout, 'created /web\n');

  const started = await docker(world, ['start', 'web']);
  t.equal(started.code, 0, started.stderr);
  await world.container('web', (c) => c.state === 'running');
  t.match(await psLine(world, 'web'), /^web Up /);

  t.equal((await api(world, 'DELETE', '/containers/web')).status, 409);
  const refused = await docker(world, ['rm', 'web']);
  t.not(refused.code, 0);
  t.match(refused.stderr, /cannot remove a running container/);
  t.ok(world.appliance.directory.find('web'), 'still there after the refused rm');

  const removed = await docker(world, ['rm', '-f', 'web']);
  t.equal(removed.code, 0, removed.stderr);
  t.equal(await psLine(world, 'web'), undefined);
});

t.test('docker rm removes a created container that never started', { skip }, async (t) => {
  const world = await startWorld(t);
  await docker(world, ['create', '--name', 'idle', 'host', 'true']);
  const removed = await docker(world, ['rm', 'idle']);
  t.equal(removed.code, 0, removed.stderr);
  t.equal(await psLine(world, 'idle'), undefined);
});

t.test('docker run -d returns the ID at once and the container runs', { skip }, async (t) => {
  const world = await startWorld(t);
  const result = await docker(world, ['run', '-d', '--name', 'd1', 'host', 'sleep', '1000']);
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, /^[0-9a-f]{64}\n$/);
  const running = await world.container('d1', (c) => c.state === 'running' && c.link.up);
  t.equal(running.id, result.stdout.trim());
  const exec = await docker(world, ['exec', 'd1', 'echo', 'inside']);
  t.equal(exec.stdout, 'inside\n', exec.stderr);
});

t.test('a second container with a name in use is refused with 409 naming the holder', { skip }, async (t) => {
  const world = await startWorld(t);
  const first = await docker(world, ['create', '--name', 'twice', 'host', 'true']);
  const second = await docker(world, ['create', '--name', 'twice', 'host', 'true']);
  t.not(second.code, 0);
  t.match(second.stderr, `Conflict. The container name "/twice" is already in use by container "${first.stdout.trim()}"`);
});

t.test('creating from an unknown image is a 404 naming the image', { skip }, async (t) => {
  const world = await startWorld(t);
  const url = `${world.appliance.api.replace('tcp://', 'http://')}/containers/create?name=nope`;
  const response = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ Image: 'no-such-image', Cmd: ['true'] }) });
  t.equal(response.status, 404);
  t.same(await response.json(), { message: 'No such image: no-such-image' });
  t.equal((await api(world, 'GET', '/containers/nope/json')).status, 404);
});

t.test('bad create parameters are a 400 naming them', { skip }, async (t) => {
  const world = await startWorld(t);
  const post = (query: string, body: unknown) =>
    fetch(`${world.appliance.api.replace('tcp://', 'http://')}/containers/create${query}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  const badName = await post('?name=-x', { Image: 'host', Cmd: ['true'] });
  t.equal(badName.status, 400);
  t.match(await badName.json(), { message: /Invalid container name \(-x\)/ });
  const badCmd = await post('', { Image: 'host', Cmd: 'true' });
  t.equal(badCmd.status, 400);
  t.match(await badCmd.json(), { message: /Cmd must be an array of strings/ });
  const noCmd = await post('', { Image: 'host' });
  t.equal(noCmd.status, 400);
  t.match(await noCmd.json(), { message: /No command specified/ });
  const badDir = await post('', { Image: 'host', Cmd: ['true'], WorkingDir: 'relative' });
  t.equal(badDir.status, 400);
  t.match(await badDir.json(), { message: /container.cwd/ });
});
