import fs from 'node:fs';
import type { Duplex } from 'node:stream';
import t from 'tap';
import { createActor, fromCallback, type AnyActorRef } from 'xstate';
import { openPtyPair } from '../actors/ptyPair.ts';
import { ResourceTable } from '../actors/resources.ts';
import { createSerialPortActor } from '../actors/serialPort.ts';
import type { PortCommand, PortEvent } from '../machines/serialLink.ts';

/** Generous: these wait for bytes on a local pty, which take microseconds. */
const DEADLINE_MS = 10_000;

/** Resolves when `ready()` holds, checked whenever `subscribe`'s callback fires; rejects after the deadline. */
function eventually<T>(subscribe: (check: () => void) => () => void, ready: () => T | undefined, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`timed out waiting for ${what}`));
    }, DEADLINE_MS);
    const check = () => {
      const value = ready();
      if (value === undefined) return;
      clearTimeout(timer);
      unsubscribe();
      resolve(value);
    };
    const unsubscribe = subscribe(check);
    check();
  });
}

/** Collects everything a stream emits from now on. */
function collect(stream: Duplex) {
  const chunks: Buffer[] = [];
  const listeners = new Set<() => void>();
  stream.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    for (const l of listeners) l();
  });
  return {
    get all() {
      return Buffer.concat(chunks);
    },
    bytes(n: number) {
      return eventually(
        (check) => (listeners.add(check), () => listeners.delete(check)),
        () => (Buffer.concat(chunks).length >= n ? Buffer.concat(chunks) : undefined),
        `${n} bytes`,
      );
    },
  };
}

/** The real port actor under a recording parent, as the link machine would hold it. */
function openPort(table: ResourceTable, device: string) {
  const events: PortEvent[] = [];
  const listeners = new Set<() => void>();
  const parent = createActor(
    fromCallback<PortEvent>(({ receive }) =>
      receive((event) => {
        events.push(event);
        for (const l of listeners) l();
      }),
    ),
  ).start();
  const port: AnyActorRef = createActor(createSerialPortActor(table), { parent, input: { device } }).start();
  const when = <T>(ready: () => T | undefined, what: string) =>
    eventually((check) => (listeners.add(check), () => listeners.delete(check)), ready, what);
  return {
    events,
    send: (command: PortCommand) => port.send(command),
    event: <K extends PortEvent['type']>(type: K, after = 0) =>
      when(() => events.slice(after).find((e): e is Extract<PortEvent, { type: K }> => e.type === type), type),
    bytes: (n: number) =>
      when(() => {
        const all = Buffer.concat(events.flatMap((e) => (e.type === 'PORT_BYTES' ? [e.data] : [])));
        return all.length >= n ? all : undefined;
      }, `${n} bytes from the port`),
    close: async () => {
      const from = events.length;
      port.send({ type: 'CLOSE' });
      await when(() => events.slice(from).find((e) => e.type === 'PORT_CLOSED'), 'PORT_CLOSED');
    },
  };
}

const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

t.test('every byte value crosses the pair unchanged both ways and nothing echoes: the port opens the slave raw', async (t) => {
  const pair = openPtyPair();
  t.teardown(() => pair.close());
  const fromGuest = collect(pair.master);
  const port = openPort(new ResourceTable(), pair.slavePath);
  await port.event('PORT_OPENED');

  pair.master.write(ALL_BYTES);
  t.same(await port.bytes(256), ALL_BYTES, 'CR, LF, ^C, ^D, ^S, DEL and 8-bit bytes arrive as sent');
  port.send({ type: 'WRITE', data: ALL_BYTES });
  // An echo of the first 256 bytes would arrive before these.
  t.same(await fromGuest.bytes(256), ALL_BYTES, 'nothing echoed, output not post-processed');
  await port.close();
});

t.test('the pty survives the guest closing and reopening the device', async (t) => {
  const pair = openPtyPair();
  t.teardown(() => pair.close());
  const table = new ResourceTable();
  const first = openPort(table, pair.slavePath);
  await first.event('PORT_OPENED');
  await first.close();

  const fromGuest = collect(pair.master);
  const second = openPort(table, pair.slavePath);
  await second.event('PORT_OPENED');
  second.send({ type: 'WRITE', data: Buffer.from('after reopen') });
  t.equal((await fromGuest.bytes(12)).toString(), 'after reopen');
  pair.master.write('to the reopened port');
  t.equal((await second.bytes(20)).toString(), 'to the reopened port');
  await second.close();
});

t.test('after HAND_OFF the port reports nothing more and the stream\'s next reader gets every byte', async (t) => {
  const pair = openPtyPair();
  t.teardown(() => pair.close());
  const table = new ResourceTable();
  const port = openPort(table, pair.slavePath);
  const { handle } = await port.event('PORT_OPENED');
  pair.master.write('handshake');
  await port.bytes(9);
  port.send({ type: 'HAND_OFF' });
  pair.master.write('ssh bytes');
  const ssh = collect(table.get<Duplex>(handle));
  t.equal((await ssh.bytes(9)).toString(), 'ssh bytes');
  t.equal(Buffer.concat(port.events.flatMap((e) => (e.type === 'PORT_BYTES' ? [e.data] : []))).toString(), 'handshake');
  await port.close();
  t.throws(() => table.get(handle), /no live resource/, 'a closed port leaves the resource table');
});

t.test('with no slave open the master neither fails nor ends: it drops writes and reads again once a slave opens', async (t) => {
  const pair = openPtyPair({ holdSlave: false });
  t.teardown(() => pair.close());
  const trouble: string[] = [];
  for (const event of ['error', 'end', 'close']) pair.master.on(event, () => trouble.push(event));
  const fromGuest = collect(pair.master);
  const flags = fs.constants.O_RDWR | fs.constants.O_NOCTTY;

  let slave = fs.openSync(pair.slavePath, flags);
  fs.writeSync(slave, 'first\r\n');
  await fromGuest.bytes(7);
  const hangup = new Promise((resolve) => pair.master.once('hangup', resolve));
  fs.closeSync(slave);
  await hangup;
  // The master reads EIO now; a write completes, and is lost like bytes on an unplugged line.
  await new Promise<void>((resolve, reject) => pair.master.write('into the void', (err) => (err ? reject(err) : resolve())));

  slave = fs.openSync(pair.slavePath, flags | fs.constants.O_NONBLOCK);
  t.teardown(() => fs.closeSync(slave));
  t.throws(() => fs.readSync(slave, Buffer.alloc(64)), { code: 'EAGAIN' }, 'the lost write never reached the pty');
  fs.writeSync(slave, 'second\r\n');
  t.equal((await fromGuest.bytes(15)).toString(), 'first\r\nsecond\r\n', 'raw mode survived the slave being closed');
  t.same(trouble, []);
});

t.test('writing more than the pty holds while the guest does not read waits for it without blocking the process', async (t) => {
  const pair = openPtyPair();
  t.teardown(() => pair.close());
  const slave = fs.openSync(pair.slavePath, fs.constants.O_RDWR | fs.constants.O_NOCTTY | fs.constants.O_NONBLOCK);
  t.teardown(() => fs.closeSync(slave));
  const data = Buffer.from(Array.from({ length: 1024 * 1024 }, (_, i) => (i * 7) & 0xff));
  let written = false;
  pair.master.write(data, () => (written = true));

  // The event loop keeps turning while the write waits for room.
  await new Promise((resolve) => setImmediate(resolve));
  t.notOk(written, 'the pty cannot hold 1 MiB');

  const received: Buffer[] = [];
  let total = 0;
  const scratch = Buffer.alloc(64 * 1024);
  const deadline = Date.now() + DEADLINE_MS;
  while (total < data.length && Date.now() < deadline) {
    try {
      const n = fs.readSync(slave, scratch);
      received.push(Buffer.from(scratch.subarray(0, n)));
      total += n;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  t.ok(Buffer.concat(received).equals(data), 'every byte arrived, in order, once the guest read');
  t.ok(written);
});

t.test('closing the pair ends the master stream and removes the slave device', async (t) => {
  const pair = openPtyPair();
  let closed = false;
  pair.master.on('close', () => (closed = true));
  await pair.close();
  t.ok(closed);
  t.throws(() => fs.openSync(pair.slavePath, 'r+'), { code: 'ENOENT' });
});

t.test('when the pty goes away under an open port, the port reports PORT_CLOSED naming the device', async (t) => {
  const pair = openPtyPair();
  const port = openPort(new ResourceTable(), pair.slavePath);
  await port.event('PORT_OPENED');
  await pair.close();
  const closed = await port.event('PORT_CLOSED');
  t.match(closed.error, pair.slavePath);
});

t.test('a port on a missing device reports PORT_CLOSED naming the device', async (t) => {
  const port = openPort(new ResourceTable(), '/dev/tether-no-such-tty');
  const closed = await port.event('PORT_CLOSED');
  t.match(closed.error, '/dev/tether-no-such-tty');
  t.notOk(port.events.some((e) => e.type === 'PORT_OPENED'));
});
