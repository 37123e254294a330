import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { sandboxUnsupported, startSandbox } from '../tools/sandbox.ts';
import { startApplianceProcess } from './support/applianceProcess.ts';
import { docker, dockerMissing, eventually, psLine } from './support/world.ts';

// A guest is untrusted: a containerVM whose guest speaks for another VM's
// container (a compromised guest, here one whose reloaded config lists a
// session with that container's full ID) is refused, logged and not
// listed, and the real container goes on as if it were not there.

const skip = sandboxUnsupported() ?? dockerMissing();
if (skip) t.comment(`skipping the impostor tests: ${skip}`);

const session = (cmd: string[]) => ({ cmd });

/** An appliance of the test's own, its state directory, and its serial listener's host and port; the container "real" goes with the test. */
async function applianceWithReal(t: Test) {
  const state = join(mkdtempSync(join(tmpdir(), 'tether-impostor-')), 'state');
  t.teardown(() => rmSync(join(state, '..'), { recursive: true, force: true }));
  const appliance = await startApplianceProcess(t, state);
  const api = { appliance };
  const [host, port] = appliance.serial.replace('tcp://', '').split(':');
  t.teardown(() => docker(api, ['rm', '-f', 'real']));
  return { state, api, host, port };
}

t.test('an impostor guest reporting a running container\'s ID is refused and logged; exec, ps, logs and stop of the real container are unaffected', { skip }, async (t) => {
  const { state, api, host, port } = await applianceWithReal(t);

  const run = await docker(api, ['run', '-d', '--name', 'real', 'host', 'sh', '-c', 'echo real-output; exec sleep 100000']);
  t.equal(run.code, 0, run.stderr);
  const id = run.stdout.trim();
  await eventually(async () => ((await docker(api, ['logs', 'real'])).stdout.includes('real-output') ? true : undefined), 'the real container\'s output');

  // Its launcher registers the impostor with its own session only, as every launcher does.
  const consoleFile = join(state, '..', 'impostor-console.log');
  const impostor = await startSandbox({
    config: { id: 'imp', name: 'imp', hostname: 'imp', sessions: { imp: session(['sleep', '100000']) } },
    source: 'impostor config',
    appliance: { host: host!, port: Number(port) },
    stateDir: state,
    console: { file: consoleFile },
  });
  t.teardown(() => impostor.close());
  await eventually(async () => ((await psLine(api, 'imp'))?.includes(' Up') ? true : undefined), 'the impostor\'s own container to be listed');

  // Then its guest speaks for the real container: a session with its ID, whose output is the impostor's and which ends at once.
  const doc = JSON.parse(readFileSync(impostor.configPath, 'utf8'));
  doc.sessions[id] = session(['sh', '-c', 'echo impostor-output; exit 7']);
  writeFileSync(impostor.configPath, JSON.stringify(doc));
  await impostor.signal('SIGHUP');
  await eventually(() => (new RegExp(`session changed sessionId=${id} state=exited exitCode=7`).test(readFileSync(consoleFile, 'utf8')) ? true : undefined), 'the impostor\'s session to end');
  // A guest's reports arrive in order: once its own container's end is known, what it said of the other's end was heard before.
  t.equal((await docker(api, ['kill', 'imp'])).code, 0, 'the impostor\'s own container is killed');
  await eventually(async () => ((await psLine(api, 'imp'))?.includes('Exited (137)') ? true : undefined), 'the impostor\'s end to be listed');

  t.match(api.appliance.log(), new RegExp(`warn  appliance: refused what containerVM imp reported of containers not assigned to it vm=imp link=link\\d+ report=container-info containers=${id}`), 'the refusal is logged with the VM and the ID');
  t.match(await psLine(api, 'real'), /^real Up /, 'docker ps lists the real container, running');
  const inspect = JSON.parse((await docker(api, ['inspect', 'real'])).stdout)[0] as { Id: string; State: { Running: boolean } };
  t.equal(inspect.Id, id);
  t.equal(inspect.State.Running, true, 'the impostor\'s session ending did not stop it');
  const exec = await docker(api, ['exec', 'real', 'hostname']);
  t.equal(exec.code, 0, exec.stderr);
  t.not(exec.stdout.trim(), 'imp', 'docker exec reaches the real container, not the impostor');
  const logs = await docker(api, ['logs', 'real']);
  t.equal(logs.stdout, 'real-output\n', 'its logs are its own');
  t.ok(existsSync(join(state, 'guests', `${id}.pub`)), 'its trust entry is still there');

  const stop = await docker(api, ['stop', 'real']);
  t.equal(stop.code, 0, stop.stderr);
  t.match(await psLine(api, 'real'), /^real Exited \(143\)/, 'docker stop stops it as it would have');
});

t.test('a launcher cannot register a containerVM under a running container\'s ID, nor assign it that ID', { skip }, async (t) => {
  const { state, api, host, port } = await applianceWithReal(t);
  const run = await docker(api, ['run', '-d', '--name', 'real', 'host', 'sleep', '100000']);
  t.equal(run.code, 0, run.stderr);
  const id = run.stdout.trim();
  const sandbox = (config: Record<string, unknown>) => startSandbox({ config, source: 'impostor config', appliance: { host: host!, port: Number(port) }, stateDir: state, console: 'ignore' });

  await t.rejects(sandbox({ id, name: 'imp', hostname: 'imp', sessions: { [id]: session(['sleep', '100000']) } }), {
    message: new RegExp(`^cannot register containerVM "${id}": it is registered already, with another host key`),
  });
  await t.rejects(sandbox({ id: 'imp', name: 'imp', hostname: 'imp', sessions: { imp: session(['sleep', '100000']), [id]: session(['sleep', '100000']) } }), {
    message: `cannot register containerVM "imp": container ID ${id} is assigned to containerVM ${id}`,
  });
  t.ok(existsSync(join(state, 'guests', `${id}.pub`)), 'the real container\'s trust entry is still there');
  t.notOk(existsSync(join(state, 'guests', 'imp.pub')), 'nothing of the refused one is');
  t.match(await psLine(api, 'real'), /^real Up /);
});

t.test('a guest that names its container as another is not taken for it: inspect, start and exec by name reach the container the API named', { skip }, async (t) => {
  const { state, api, host, port } = await applianceWithReal(t);
  // Created, not started: the appliance alone knows it, and a guest reports its impostor first.
  const created = await docker(api, ['create', '--name', 'real', 'host', 'sleep', '100000']);
  t.equal(created.code, 0, created.stderr);
  const id = created.stdout.trim();
  const imp = await startSandbox({
    config: { id: 'imp', name: 'real', hostname: 'imp', sessions: { imp: session(['sleep', '100000']) } },
    source: 'impostor config', appliance: { host: host!, port: Number(port) }, stateDir: state, console: 'ignore',
  });
  t.teardown(() => imp.close());
  await eventually(async () => ((await docker(api, ['inspect', '-f', '{{.Name}}', 'imp'])).stdout === '/real\n' ? true : undefined), 'the impostor to be reported');

  const inspect = await docker(api, ['inspect', '-f', '{{.Id}}', 'real']);
  t.equal(inspect.stdout.trim(), id, 'inspect by name finds the API\'s container');
  const start = await docker(api, ['start', 'real']);
  t.equal(start.code, 0, start.stderr);
  const exec = await docker(api, ['exec', 'real', 'hostname']);
  t.equal(exec.stdout, `${id.slice(0, 12)}\n`, exec.stderr);
});
