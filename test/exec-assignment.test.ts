import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { sandboxUnsupported } from '../tools/sandbox.ts';
import { docker, dockerMissing, eventually, startWorld } from './support/world.ts';

// A containerVM may report only the IDs assigned to it; an exec the
// appliance starts is assigned to its VM in the trust store, so a later
// appliance that adopts the VM lists the exec as the first one did.

const skip = sandboxUnsupported() ?? dockerMissing();
if (skip) t.comment(`skipping the exec assignment test: ${skip}`);

t.test('an exec started before an appliance restart is still listed after it: its session stays assigned to its containerVM', { skip }, async (t) => {
  const world = await startWorld(t);
  const run = await docker(world, ['run', '-d', '--name', 'held', 'host', 'sleep', '100000']);
  t.equal(run.code, 0, run.stderr);
  const id = run.stdout.trim();
  const exec = await docker(world, ['exec', '-d', 'held', 'sleep', '100000']);
  t.equal(exec.code, 0, exec.stderr);
  const session = await eventually(() => world.appliance.directory.list().find((r) => r.vm === id && r.id !== id && r.state === 'running'), 'the exec session to be listed');
  t.equal(readFileSync(join(world.stateDir, 'guests', 'assigned', session.id), 'utf8'), `${id}\n`, 'the trust store assigns it to the container\'s VM');

  await world.restartAppliance();
  const again = await world.container(session.id, (c) => c.state === 'running' && c.link.up);
  t.equal(again.vm, id, 'the new appliance lists it, from the VM it was assigned to');
});
