import t from 'tap';
import { collect, notRoot, startWorld, type World } from './support/world.ts';
import { shellGate } from './support/gate.ts';

// The backpressure policy (docs/PROTOCOL.md, "Backpressure"), end to end: a
// real appliance and a sandboxed guest, clients attached through the
// appliance's directory (the layer under the Docker API). A client that does
// not read leaves its output stream unconsumed, so the whole path backs up to
// the guest as it would from a docker CLI that stopped reading its socket.

const skip = notRoot();
if (skip) console.error(`# SKIPPING test/attach-backpressure.test.ts: ${skip}`);

const want = { stdin: false, stdout: true, stderr: true, stream: true, logs: false };
/** Far more than an SSH window (2 MiB) and the buffers on the way: a client that does not read is sure to fill them. */
const LINES = 2_000_000;
const ALL = Array.from({ length: LINES }, (_, i) => `${i + 1}\n`).join('');

/** A containerVM whose primary prints seq 1 LINES and exits 5, once the test opens its gate (every client attached first). */
async function writer(world: World, id: string, extra: Record<string, unknown> = {}) {
  const gate = shellGate();
  const cmd = ['sh', '-c', `${gate.wait}; seq 1 ${LINES}; exit 5`];
  await world.sandbox({ id, name: `vm-${id}`, hostname: id, sessions: { [id]: { cmd } }, ...extra });
  await world.container(id, (c) => c.state === 'running');
  return { open: gate.open };
}

t.test('a client that never reads, less than half a log behind, holds neither the process nor another client, and gets every byte once it reads', { skip }, async (t) => {
  const world = await startWorld(t);
  // 32 MiB of log for 14 MiB of output: it never falls half a log behind.
  const vm = await writer(world, 'stalled', { outputLogBytes: 32 * 1024 * 1024 });
  const stalled = await world.appliance.directory.attach('stalled', want);
  const reader = await world.appliance.directory.attach('stalled', want);
  const read = collect(reader.stdout);
  vm.open();

  t.ok((await read).toString() === ALL, `the reading client got all ${LINES} lines, in order`);
  t.equal((await reader.done).exitCode, 5, 'and the exit status');
  const exited = await world.container('stalled', (c) => c.state === 'exited');
  t.equal(exited.exitCode, 5, 'the process ran to its end while the other client read nothing');

  const late = (await collect(stalled.stdout)).toString();
  t.ok(late === ALL, `the client that read nothing gets every line once it reads (${late.length} of ${ALL.length} bytes)`);
  t.equal((await stalled.done).exitCode, 5, 'then the exit status');
});

t.test('a client that reads slowly gets every byte: half a log behind, it holds the output while it reads', { skip }, async (t) => {
  const world = await startWorld(t);
  // 1 MiB of log for 14 MiB of output, read at a fraction of the speed it is written.
  const vm = await writer(world, 'slow', { outputLogBytes: 1024 * 1024 });
  const slow = await world.appliance.directory.attach('slow', want);
  const chunks: Buffer[] = [];
  slow.stdout.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    slow.stdout.pause();
    setTimeout(() => slow.stdout.resume(), 2);
  });
  const ended = new Promise((resolve) => slow.stdout.once('end', resolve));
  vm.open();
  await ended;
  t.ok(Buffer.concat(chunks).toString() === ALL, 'every line, in order, though the log holds a fourteenth of them');
  t.equal((await slow.done).exitCode, 5, 'and the exit status');
});

t.test('a client that holds the output and reads nothing is cut loose: the process goes on, and once it reads it skips to the oldest byte the log holds', { skip }, async (t) => {
  const world = await startWorld(t);
  // 1 MiB of log for 14 MiB of output.
  const vm = await writer(world, 'lapped', { outputLogBytes: 1024 * 1024 });
  const lapped = await world.appliance.directory.attach('lapped', want);
  const reader = await world.appliance.directory.attach('lapped', want);
  const read = collect(reader.stdout);
  vm.open();
  t.ok((await read).toString() === ALL, 'a client that reads gets everything');
  t.equal((await world.container('lapped', (c) => c.state === 'exited')).exitCode, 5, 'the process ran to its end');

  const got = (await collect(lapped.stdout)).toString();
  let kept = 0;
  while (kept < got.length && got[kept] === ALL[kept]) kept++;
  const rest = got.slice(kept);
  t.ok(kept > 0, `it first has what was on its way before it stopped reading (${kept} bytes)`);
  // The log's files keep up to an eighth more than its capacity (whole segments).
  t.ok(rest.length > 0 && rest.length <= (1024 * 1024 * 9) / 8 + 64 * 1024, `then at most what the log holds (${rest.length} bytes)`);
  t.ok(ALL.endsWith(rest), 'which is the end of the output, in order');
  t.equal((await lapped.done).exitCode, 5, 'and the exit status');
});
