import t from 'tap';
import { VERSION } from '../appliance/version.ts';
import { docker, dockerMissing, notRoot, startWorld } from './support/world.ts';

t.test('docker info shows tether as the Docker host, with its containers counted as ps counts them', { skip: dockerMissing() || notRoot() }, async (t) => {
  const world = await startWorld(t);
  const format = ['info', '--format', '{{.ServerVersion}}|{{.Driver}}|{{.Containers}}|{{.ContainersRunning}}|{{.ContainersStopped}}|{{.Images}}|{{.DockerRootDir}}'];
  const empty = await docker(world, format);
  t.equal(empty.code, 0, empty.stderr);
  t.equal(empty.stdout.trim(), `${VERSION}|tether|0|0|0|1|${world.stateDir}`, 'no containers; the built-in host image');

  await world.sandbox({ id: 'up', name: 'up', hostname: 'up', sessions: { up: { cmd: ['sleep', '1000'] } } });
  await world.sandbox({ id: 'done', name: 'done', hostname: 'done', sessions: { done: { cmd: ['true'] } } });
  await world.container('up', (c) => c.state === 'running');
  await world.container('done', (c) => c.state === 'exited');
  const two = await docker(world, format);
  t.equal(two.stdout.trim(), `${VERSION}|tether|2|1|1|1|${world.stateDir}`, 'one running, one stopped');

  const plain = await docker(world, ['info']);
  t.equal(plain.code, 0, 'the plain report prints without errors');
  t.match(plain.stdout, /Server Version: /);
});
