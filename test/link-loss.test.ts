import { randomBytes } from 'node:crypto';
import t from 'tap';
import { SYN } from '../shared/handshake.ts';
import { collect, eventually, startWorld } from './support/world.ts';

// The serial path misbehaving for real: the hypervisor's TCP connection
// dropped mid-stream, garbage and stale SYNs on the line, a containerVM gone.

const want = { stdin: false, stdout: true, stderr: true, stream: true, logs: false };
const lines = 20_000;
const counter = `i=0; while [ $i -lt ${lines} ]; do echo "line $i"; i=$((i+1)); done`;

t.test('a link dropped mid-stream: the guest re-handshakes and the attach resumes at its offset, no byte lost or repeated', async (t) => {
  const world = await startWorld(t);
  const sandbox = await world.sandbox({ id: 'loss', name: 'loss', hostname: 'loss', sessions: { loss: { cmd: ['sh', '-c', counter], runBlock: true } } });
  await world.container('loss');
  const a = await world.appliance.directory.attach('loss', want);
  const output = collect(a.stdout);
  // Drop the connection three times while output streams.
  const dropAt = [20_000, 80_000, 150_000];
  let received = 0;
  let dropped = 0;
  a.stdout.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (received >= dropAt[dropped]!) {
      dropped++;
      sandbox.line!.bridge.drop();
    }
  });
  const text = (await output).toString();
  const expected = Array.from({ length: lines }, (_, i) => `line ${i}\n`).join('');
  t.equal(dropped, 3, 'the link was dropped three times');
  t.equal(text.length, expected.length, 'every byte arrived once');
  t.ok(text === expected, 'in order');
  t.equal((await a.done).exitCode, 0);
});

t.test('garbage and repeated SYNs on the line before a handshake: the link still syncs', async (t) => {
  const world = await startWorld(t);
  const sandbox = await world.sandbox({ id: 'noisy', name: 'noisy', hostname: 'noisy', sessions: { noisy: { cmd: ['cat'], openStdin: true } } });
  await world.container('noisy');
  const noise = Buffer.concat([randomBytes(64 * 1024), Buffer.from([SYN, 1, SYN, SYN, 7, SYN]), randomBytes(1000)]);
  // The line goes down, and the guest's side of the serial port receives noise.
  sandbox.line!.bridge.drop();
  sandbox.line!.master.write(noise);
  const a = await world.appliance.directory.attach('noisy', { ...want, stdin: true });
  const out = collect(a.stdout);
  a.stdin!.end('still here\n');
  t.equal((await out).toString(), 'still here\n');
  t.equal((await a.done).exitCode, 0);
});

t.test('an attach to a containerVM whose link is gone fails after its deadline saying what it waited for', async (t) => {
  const world = await startWorld(t, { attachTimeoutMs: 500 });
  const sandbox = await world.sandbox({ id: 'gone', name: 'gone', hostname: 'gone', sessions: { gone: { cmd: ['cat'], openStdin: true } } });
  await world.container('gone');
  sandbox.guest.kill('SIGKILL');
  await eventually(() => (world.appliance.directory.find('gone')?.link.up === false ? true : undefined), 'the link to go down');
  await t.rejects(world.appliance.directory.attach('gone', want), {
    status: 504,
    message: /cannot attach to container gone: waited 500 ms for a connection carrying container gone: containerVM gone last reported it; link link\d+ down/,
  });
});
