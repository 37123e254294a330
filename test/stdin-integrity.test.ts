import t from 'tap';
import { sandboxUnsupported } from '../tools/sandbox.ts';
import { docker, dockerMissing, startWorld } from './support/world.ts';

// What a client types reaches the process whole, in order, with nothing
// added: the real docker CLI against a sandboxed containerVM.

const skip = sandboxUnsupported() ?? dockerMissing();
if (skip) t.comment(`skipping stdin tests: ${skip}`);

/** More than an SSH window (2 MiB): some of it is still queued when the client's input ends. */
const BIG = 'abcdefghijklmnopqrstuvwxyz0123456789\n'.repeat(90_000);

t.test('docker run -i: every byte of a 3 MiB stdin reaches the process before its end of input', { skip }, async (t) => {
  const world = await startWorld(t);
  const result = await docker(world, ['run', '-i', '--rm', 'host', 'sh', '-c', 'cat; echo end of input'], BIG);
  t.equal(result.code, 0, result.stderr);
  t.equal(result.stdout.length, BIG.length + 'end of input\n'.length, 'as many bytes back');
  t.ok(result.stdout === `${BIG}end of input\n`, 'the same bytes, in order, then the end of input');
});

t.test('docker exec -i: the input is the process\'s own, without the request\'s body, and the detach keys are data without a tty', { skip }, async (t) => {
  const world = await startWorld(t);
  await world.sandbox({ id: 'typed', name: 'typed', hostname: 'typed', sessions: { typed: { cmd: ['sleep', '1000'] } } });
  await world.container('typed', (c) => c.state === 'running');
  const input = 'hi\n\x10\x11 ctrl-p ctrl-q are bytes like any other\n';
  const result = await docker(world, ['exec', '-i', 'typed', 'cat'], input);
  t.equal(result.code, 0, result.stderr);
  t.equal(result.stdout, input);
});
