import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { DEFAULT_READY_TIMEOUT_MS } from '../machines/sshSession.ts';
import { ackFrame, PROBE, SYN, synFrame, scanSynAck } from '../shared/handshake.ts';
import { sandboxUnsupported, startSandbox } from '../tools/sandbox.ts';
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

/** Everything `socket` sends from now on, and a wait for what is in it. */
function received(socket: Socket) {
  let bytes = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => { bytes = Buffer.concat([bytes, chunk]); });
  return {
    take: () => { const all = bytes; bytes = Buffer.alloc(0); return all; },
    until: (what: string, found: (bytes: Buffer) => boolean, timeoutMs?: number) => eventually(() => (found(bytes) ? true : undefined), what, timeoutMs),
  };
}

t.test('a handshake that ended on the guest\'s side only: the appliance\'s next SYN is answered at once, not taken for an SSH version line', { skip: sandboxUnsupported() }, async (t) => {
  // This test plays the appliance's side of the line, byte by byte.
  const server = createServer();
  const connected = new Promise<Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const stateDir = mkdtempSync(join(tmpdir(), 'tether-half-handshake-'));
  const sandbox = await startSandbox({
    config: { id: 'half', name: 'half', hostname: 'half', sessions: { half: { cmd: ['sleep', '1000'] } } },
    source: 'test config',
    appliance: { host: '127.0.0.1', port: (server.address() as { port: number }).port },
    stateDir,
    console: 'ignore',
  });
  t.teardown(async () => {
    await sandbox.close();
    server.close();
    rmSync(stateDir, { recursive: true, force: true });
  });
  const line = await connected;
  const guest = received(line);
  // As the appliance does, SYN again until the guest answers.
  const synUntilAnswered = (p: number, what: string, timeoutMs?: number) => {
    let sent = 0;
    return guest.until(what, (bytes) => {
      if (scanSynAck(bytes, p).found) return true;
      if (Date.now() - sent > 300) {
        line.write(synFrame(p));
        sent = Date.now();
      }
      return false;
    }, timeoutMs);
  };
  await synUntilAnswered(0x20, 'the guest\'s SYN-ACK, once it has booted');
  const synAck = guest.take();
  const q = synAck[synAck.lastIndexOf(0x06) + 2]!;
  line.write(ackFrame(q));
  await guest.until('the probe', (bytes) => bytes.includes(Buffer.from(PROBE)));
  guest.take();
  line.write(PROBE);
  // The guest's final ACK, then its SSH version line: the handshake is over on its side.
  await guest.until('the guest\'s SSH version line', (bytes) => bytes.includes('SSH-2.0-tether'));
  guest.take();
  // As if the final ACK had come too late: the appliance starts over. Answered
  // well before the session's authentication deadline, which would start the line over too, only later.
  await synUntilAnswered(0x30, 'a SYN-ACK to the new SYN', DEFAULT_READY_TIMEOUT_MS / 2);
  t.pass('the guest answered the new handshake');
});
