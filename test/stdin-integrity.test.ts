import t from 'tap';
import { once } from 'node:events';
import net from 'node:net';
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

t.test('an exec start whose body comes in pieces, after its headers, is answered, and what follows the body is stdin', { skip, timeout: 30_000 }, async (t) => {
  const world = await startWorld(t);
  await world.sandbox({ id: 'pieces', name: 'pieces', hostname: 'pieces', sessions: { pieces: { cmd: ['sleep', '1000'] } } });
  await world.container('pieces', (c) => c.state === 'running');
  const base = world.appliance.api.replace(/^tcp:/, 'http:');
  const created = (await (await fetch(`${base}/containers/pieces/exec`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ Cmd: ['head', '-c', '5'], AttachStdin: true, AttachStdout: true }),
  })).json()) as { Id: string };
  const body = JSON.stringify({ Detach: false, Tty: false });
  const { hostname: host, port } = new URL(base);
  const socket = net.connect({ host, port: Number(port) });
  t.teardown(() => socket.destroy());
  await once(socket, 'connect');
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  const ended = once(socket, 'end');
  socket.write(`POST /exec/${created.Id}/start HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`);
  for (const piece of [body.slice(0, 5), body.slice(5, 12), body.slice(12)]) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    socket.write(piece);
  }
  socket.write('hello');
  await ended;
  t.match(received, /^HTTP\/1\.1 101 UPGRADED\r\n/);
  // One stdout frame: the 8-byte header, then the payload.
  t.equal(received.slice(received.indexOf('\r\n\r\n') + 4 + 8), 'hello', 'the process read what followed the body, and nothing of it');
});
