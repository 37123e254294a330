import t, { type Test } from 'tap';
import fc from 'fast-check';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createActor, fromCallback, setup } from 'xstate';
import { createOutputLogActor, type OutputLogOptions } from '../actors/outputLog.ts';
import { grow, type LogExtent, type OutputLogEvent, type SshServerCommand } from '../machines/guest.ts';
import { createLog } from '../shared/log.ts';
import { OutputLog, type OutputRecord, type OutputStream } from '../shared/outputLog.ts';
import { FILE_HEADER_BYTES, RECORD_HEADER_BYTES, readLoggedOutput, segmentName, sessionLogDir, type LoggedRecord } from '../shared/outputLogFiles.ts';

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (records: OutputRecord[]) => records.map((r) => `${r.stream}:${Buffer.from(r.data).toString('latin1')}@${r.offset}`);

t.test('an empty log starts and ends at 0 and reads nothing', async (t) => {
  const log = new OutputLog(100);
  t.equal(log.start, 0);
  t.equal(log.end, 0);
  t.same(log.read(0, 10), { skipped: 0, records: [] });
});

t.test('appends keep stream tags and absolute offsets in order', async (t) => {
  const log = new OutputLog(100);
  log.append('stdout', bytes('hello '));
  log.append('stderr', bytes('oops '));
  log.append('stdout', bytes('world'));
  t.equal(log.end, 16);
  t.same(text(log.read(0, 100).records), ['stdout:hello @0', 'stderr:oops @6', 'stdout:world@11']);
});

t.test('a read starting inside a record splits it, and maxBytes cuts the last one', async (t) => {
  const log = new OutputLog(100);
  log.append('stdout', bytes('abcdef'));
  log.append('stderr', bytes('ghij'));
  t.same(text(log.read(2, 6).records), ['stdout:cdef@2', 'stderr:gh@6']);
  t.same(text(log.read(6, 1).records), ['stderr:g@6']);
  t.same(text(log.read(10, 5).records), [], 'reading at end gives nothing');
  t.same(text(log.read(0, 0).records), [], 'a zero budget gives nothing');
});

t.test('reads return views of the appended bytes, not copies', async (t) => {
  const log = new OutputLog(100);
  const chunk = bytes('abcdef');
  log.append('stdout', chunk);
  const [whole] = log.read(0, 100).records;
  const [part] = log.read(2, 2).records;
  t.equal(whole!.data, chunk, 'a whole record is handed out as appended');
  t.equal(part!.data.buffer, chunk.buffer, 'a part is a subarray of it');
});

t.test('empty appends are ignored', async (t) => {
  const log = new OutputLog(100);
  log.append('stdout', new Uint8Array(0));
  t.equal(log.end, 0);
  t.same(log.read(0, 10).records, []);
});

t.test('over capacity, whole old records go and the straddling one is trimmed', async (t) => {
  const log = new OutputLog(10);
  log.append('stdout', bytes('0123'));
  log.append('stderr', bytes('4567'));
  log.append('stdout', bytes('89ab'));
  t.equal(log.end, 12);
  t.equal(log.start, 2, 'exactly capacity bytes are kept');
  t.equal(log.read(2, 100).skipped, 0);
  t.same(text(log.read(2, 100).records), ['stdout:23@2', 'stderr:4567@4', 'stdout:89ab@8']);
  log.append('stderr', bytes('cdefgh'));
  t.equal(log.start, 8);
  t.same(text(log.read(0, 100).records), ['stdout:89ab@8', 'stderr:cdefgh@12']);
});

t.test('a read from before start reads from start and reports the dropped bytes', async (t) => {
  const log = new OutputLog(4);
  log.append('stdout', bytes('abcdefgh'));
  t.equal(log.start, 4);
  const read = log.read(1, 100);
  t.equal(read.skipped, 3);
  t.same(text(read.records), ['stdout:efgh@4']);
});

t.test('a single chunk larger than capacity keeps only its tail', async (t) => {
  const log = new OutputLog(3);
  log.append('stderr', bytes('abcdefg'));
  t.equal(log.start, 4);
  t.equal(log.end, 7);
  t.same(text(log.read(0, 100).records), ['stderr:efg@4']);
});

t.test('long runs of small appends stay within capacity and readable', async (t) => {
  const log = new OutputLog(1000);
  for (let i = 0; i < 10_000; i++) log.append(i % 2 === 0 ? 'stdout' : 'stderr', bytes(String(i % 10)));
  t.equal(log.end - log.start, 1000);
  const read = log.read(log.start, 1000);
  t.equal(read.records.length, 1000);
  t.equal(read.records[0]!.offset, 9000);
  t.equal(Buffer.from(read.records[999]!.data).toString(), '9');
});

t.test('a capacity that is not a positive integer is refused', async (t) => {
  t.throws(() => new OutputLog(0), RangeError);
  t.throws(() => new OutputLog(1.5), RangeError);
  t.throws(() => new OutputLog(10).setCapacity(0), RangeError);
});

t.test('a larger capacity keeps more from then on; a smaller one drops the oldest bytes at once', async (t) => {
  const log = new OutputLog(4);
  log.append('stdout', bytes('abcdef'));
  log.setCapacity(8);
  log.append('stderr', bytes('ghij'));
  t.equal(log.start, 2, 'nothing older than the old capacity comes back');
  t.same(text(log.read(0, 100).records), ['stdout:cdef@2', 'stderr:ghij@6']);
  log.setCapacity(3);
  t.equal(log.start, 7);
  t.same(text(log.read(0, 100).records), ['stderr:hij@7']);
});

type Op = { kind: 'append'; stream: OutputStream; data: Uint8Array } | { kind: 'read'; piece: number };

t.test('property: reading from 0 in pieces gives the retained suffix of everything appended, tags intact', async (t) => {
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({
      kind: fc.constant('append' as const),
      stream: fc.constantFrom<OutputStream>('stdout', 'stderr'),
      data: fc.uint8Array({ minLength: 0, maxLength: 40 }),
    }),
    fc.record({ kind: fc.constant('read' as const), piece: fc.integer({ min: 1, max: 50 }) }),
  );
  fc.assert(fc.property(fc.integer({ min: 1, max: 120 }), fc.array(op, { maxLength: 60 }), (capacity, ops) => {
    const log = new OutputLog(capacity);
    // The model: one (stream, byte) pair per byte ever appended.
    const model: [OutputStream, number][] = [];
    const check = (piece: number) => {
      const got: [OutputStream, number][] = [];
      let at = 0;
      let first = true;
      for (;;) {
        const { skipped, records } = log.read(at, piece);
        if (first) {
          if (skipped !== log.start) throw new Error(`skipped ${skipped}, start ${log.start}`);
          at += skipped;
          first = false;
        } else if (skipped !== 0) {
          throw new Error('skipped bytes in the middle of a read');
        }
        if (records.length === 0) break;
        let size = 0;
        for (const r of records) {
          if (r.offset !== at + size) throw new Error(`record at ${r.offset}, expected ${at + size}`);
          for (const b of r.data) got.push([r.stream, b]);
          size += r.data.length;
        }
        if (size > piece) throw new Error(`read ${size} bytes with a budget of ${piece}`);
        at += size;
      }
      const expected = model.slice(log.start);
      if (log.end !== model.length) throw new Error(`end ${log.end}, appended ${model.length}`);
      if (log.end - log.start !== Math.min(model.length, capacity)) throw new Error(`retained ${log.end - log.start}`);
      if (JSON.stringify(got) !== JSON.stringify(expected)) throw new Error('read bytes differ from the retained suffix');
    };
    for (const o of ops) {
      if (o.kind === 'append') {
        log.append(o.stream, o.data);
        for (const b of o.data) model.push([o.stream, b]);
      } else {
        check(o.piece);
      }
    }
    check(7);
  }), { numRuns: 500 });
  t.pass('held for 500 random histories');
});

// ---- the files (shared/outputLogFiles.ts) and the actor that writes them (actors/outputLog.ts) ----

type Sent = Extract<SshServerCommand, { type: 'CHANNEL_OUTPUT' }>;

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'tether-output-log-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The output log actor in a system with an SSH server that records what it is sent; commands are handled synchronously. */
function guestWithLog(options: OutputLogOptions) {
  const sent: Sent[] = [];
  let replayedTo: number | undefined;
  const root = setup({
    actors: {
      outputLog: createOutputLogActor(options),
      server: fromCallback<SshServerCommand>(({ receive }) => receive((command) => {
        if (command.type === 'CHANNEL_OUTPUT') sent.push(command);
      })),
    },
  }).createMachine({
    on: { REPLAYED: { actions: ({ event }) => void (replayedTo = (event as unknown as OutputLogEvent).to) } },
    invoke: [
      { id: 'outputLog', src: 'outputLog', systemId: 'outputLog' },
      { id: 'server', src: 'server', systemId: 'sshServer' },
    ],
  });
  const actor = createActor(root).start();
  const outputLog = actor.system.get('outputLog')!;
  return {
    append(sessionId: string, stream: OutputStream, data: Uint8Array) {
      outputLog.send({ type: 'APPEND', sessionId, stream, data });
    },
    /** What a REPLAY sent the server before the send returned. */
    replay(sessionId: string, from: number, limit = Number.MAX_SAFE_INTEGER): Sent[] {
      sent.length = 0;
      replayedTo = undefined;
      outputLog.send({ type: 'REPLAY', sessionId, channelId: 'ch1', from, limit });
      return sent.splice(0);
    },
    /** Where the last replay said it ended (REPLAYED). */
    replayedTo: () => replayedTo,
    stop: () => actor.stop(),
  };
}

/** Output as one tag per byte ("o" stdout, "e" stderr) and the bytes, so runs compare however they were chunked. */
function flat(records: { stream: OutputStream; data: Uint8Array }[]): { tags: string; bytes: string } {
  return {
    tags: records.map((r) => (r.stream === 'stdout' ? 'o' : 'e').repeat(r.data.length)).join(''),
    bytes: records.map((r) => Buffer.from(r.data).toString('latin1')).join(''),
  };
}

const read = (dir: string, options?: { from?: number; sinceUs?: number }): LoggedRecord[] => [...readLoggedOutput(dir, options)];
const segments = (dir: string) => readdirSync(dir).sort();
const capture = () => {
  const lines: string[] = [];
  return { lines, log: createLog('test', 'debug', (line) => {
    lines.push(line);
    return true;
  }) };
};

t.test('a segment starts with magic, version and the offset of its first byte; each record with time, length and stream', async (t) => {
  const logDir = tempDir(t);
  const guest = guestWithLog({ dir: logDir, capacity: 1000, now: () => 1_700_000_000_123_456 });
  guest.append('web', 'stdout', bytes('hi'));
  guest.append('web', 'stderr', bytes('oops'));
  guest.stop();
  const dir = sessionLogDir(logDir, 'web');
  t.same(segments(dir), ['0000000000000000.seg']);
  const file = readFileSync(join(dir, '0000000000000000.seg'));
  t.equal(file.subarray(0, 8).toString('latin1'), 'TETHRLOG');
  t.equal(file.readUInt32LE(8), 1, 'version');
  t.equal(file.readBigUInt64LE(16), 0n, 'first offset');
  t.equal(file.readBigUInt64LE(24), 1_700_000_000_123_456n, 'created, in µs');
  let at = FILE_HEADER_BYTES;
  t.equal(file.readBigUInt64LE(at), 1_700_000_000_123_456n, 'record time, in µs');
  t.equal(file.readUInt32LE(at + 8), 2, 'record length');
  t.equal(file.readUInt32LE(at + 12), 1, 'stdout is 1');
  t.equal(file.subarray(at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + 2).toString(), 'hi');
  at += RECORD_HEADER_BYTES + 2;
  t.equal(file.readUInt32LE(at + 12), 2, 'stderr is 2');
  t.equal(file.length, at + RECORD_HEADER_BYTES + 4, 'nothing else in the file');
});

t.test('records read back with their streams, offsets, bytes and times, from an offset or a time', async (t) => {
  const logDir = tempDir(t);
  let clock = 5_000_000;
  const guest = guestWithLog({ dir: logDir, capacity: 1000, now: () => (clock += 1000) });
  guest.append('web', 'stdout', bytes('hello '));
  guest.append('web', 'stderr', new Uint8Array([0, 255, 10]));
  guest.append('web', 'stdout', bytes('world'));
  const dir = sessionLogDir(logDir, 'web');
  const all = read(dir);
  t.same(all.map((r) => [r.offset, r.timeUs, r.stream, Buffer.from(r.data).toString('latin1')]), [
    [0, 5_001_000, 'stdout', 'hello '],
    [6, 5_002_000, 'stderr', '\0\xff\n'],
    [9, 5_003_000, 'stdout', 'world'],
  ]);
  t.same(read(dir, { from: 7 }).map((r) => [r.offset, Buffer.from(r.data).toString('latin1')]), [[7, '\xff\n'], [9, 'world']], 'from an offset inside a record');
  t.same(read(dir, { sinceUs: 5_002_000 }).map((r) => r.offset), [6, 9], 'from a time');
  t.same(read(dir, { from: 14 }), [], 'from the end: nothing');
});

t.test('a record cut short by a crash, or zeros where it should be, ends the file; the records before it are read', async (t) => {
  const logDir = tempDir(t);
  const guest = guestWithLog({ dir: logDir, capacity: 1000 });
  guest.append('web', 'stdout', bytes('complete'));
  guest.append('web', 'stderr', bytes('cut short'));
  guest.stop();
  const dir = sessionLogDir(logDir, 'web');
  const path = join(dir, segmentName(0));
  truncateSync(path, statSync(path).size - 3);
  t.same(flat(read(dir)), { tags: 'oooooooo', bytes: 'complete' }, 'a cut payload');
  truncateSync(path, FILE_HEADER_BYTES + RECORD_HEADER_BYTES + 8 + 5);
  t.same(flat(read(dir)), { tags: 'oooooooo', bytes: 'complete' }, 'a cut header');
  appendFileSync(path, Buffer.alloc(64));
  t.same(flat(read(dir)), { tags: 'oooooooo', bytes: 'complete' }, 'zeros after it');
  writeFileSync(path, Buffer.alloc(10));
  t.same(read(dir), [], 'a file cut inside its own header holds nothing');
});

t.test('a file that is not an output log of this version is refused, naming it', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, segmentName(0)), Buffer.alloc(FILE_HEADER_BYTES, 1));
  t.throws(() => read(dir), { message: `cannot read output log file ${join(dir, segmentName(0))}: not a tether output log (bad magic)` });
  const header = Buffer.alloc(FILE_HEADER_BYTES);
  header.write('TETHRLOG', 'latin1');
  header.writeUInt32LE(2, 8);
  writeFileSync(join(dir, segmentName(0)), header);
  t.throws(() => read(dir), { message: /format version 2, this reader knows 1$/ });
});

t.test('rotation keeps the files within capacity plus an eighth and one record, dropping the oldest segments first', async (t) => {
  const logDir = tempDir(t);
  const capacity = 800;
  const guest = guestWithLog({ dir: logDir, capacity });
  const dir = sessionLogDir(logDir, 'web');
  let extent: LogExtent = { start: 0, end: 0 };
  let all = '';
  let largest = 0;
  for (let i = 0; i < 400; i++) {
    const chunk = bytes(String.fromCharCode(97 + (i % 26)).repeat(1 + ((i * 37) % 90)));
    guest.append('web', i % 3 === 0 ? 'stderr' : 'stdout', chunk);
    all += Buffer.from(chunk).toString('latin1');
    largest = Math.max(largest, chunk.length);
    extent = grow(extent, chunk.length, capacity);
    const held = read(dir);
    const start = held[0]!.offset;
    t.ok(start <= extent.start, `after append ${i}: the files hold all the machine believes they do`) || t.bailout();
    t.ok(extent.end - start <= capacity + capacity / 8 + largest, `after append ${i}: ${extent.end - start} bytes held`) || t.bailout();
    if (flat(held).bytes !== all.slice(start)) t.fail(`after append ${i}: the files hold other than the newest bytes`);
  }
  const names = segments(dir);
  t.ok(names.length <= 10, `${names.length} segment files`);
  t.ok(parseInt(names[0]!, 16) > 0, 'the first segments are gone');
});

t.test('property: a replay from any offset the machine holds, in pieces of any size, sends exactly [from, end), streams intact, from files and memory', async (t) => {
  const root = tempDir(t);
  let run = 0;
  const chunk = fc.record({ stream: fc.constantFrom<OutputStream>('stdout', 'stderr'), data: fc.uint8Array({ minLength: 0, maxLength: 60 }) });
  const op = fc.oneof(chunk.map((c) => ({ kind: 'append' as const, ...c })), fc.record({ kind: fc.constant('replay' as const), at: fc.double({ min: 0, max: 1, noNaN: true }), piece: fc.integer({ min: 1, max: 400 }) }));
  fc.assert(fc.property(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 300 }), fc.array(op, { maxLength: 80 }), (capacity, tailBytes, ops) => {
    const guest = guestWithLog({ dir: join(root, String(run++)), capacity, tailBytes });
    let extent: LogExtent = { start: 0, end: 0 };
    let tags = '';
    let all = '';
    // Piece by piece, as the guest machine asks for them: each from where the last one said it ended.
    const check = (at: number, piece: number) => {
      const from = extent.start + Math.floor(at * (extent.end - extent.start));
      const sent: Sent[] = [];
      for (let next = from; next < extent.end; ) {
        const got = guest.replay('s', next, piece);
        if (got.reduce((n, c) => n + c.data.length, 0) > piece) throw new Error(`a piece of at most ${piece} bytes sent more`);
        sent.push(...got);
        const to = guest.replayedTo();
        if (to === undefined || to <= next) throw new Error(`the replay from ${next} reported ${to}: no progress`);
        next = to;
      }
      const got = flat(sent);
      if (got.bytes !== all.slice(from) || got.tags !== tags.slice(from)) throw new Error(`replay from ${from} of [${extent.start}, ${extent.end}) in pieces of ${piece} differs`);
    };
    for (const o of ops) {
      if (o.kind === 'replay') {
        check(o.at, o.piece);
        continue;
      }
      guest.append('s', o.stream, o.data);
      extent = grow(extent, o.data.length, capacity);
      tags += (o.stream === 'stdout' ? 'o' : 'e').repeat(o.data.length);
      all += Buffer.from(o.data).toString('latin1');
    }
    check(0, Number.MAX_SAFE_INTEGER);
    guest.stop();
  }), { numRuns: 300 });
  t.pass('held for 300 random histories');
});

t.test('a replay from before what the files hold starts at their oldest byte', async (t) => {
  const logDir = tempDir(t);
  const guest = guestWithLog({ dir: logDir, capacity: 100, tailBytes: 10 });
  let all = '';
  for (let i = 0; i < 50; i++) {
    const chunk = `${i}`.padEnd(7, '.');
    guest.append('web', 'stdout', bytes(chunk));
    all += chunk;
  }
  const oldest = read(sessionLogDir(logDir, 'web'))[0]!.offset;
  t.ok(oldest > 0 && oldest <= all.length - 100, `the files start at ${oldest}`);
  t.equal(flat(guest.replay('web', 0)).bytes, all.slice(oldest));
});

t.test('the seam: bytes appended before a replay are replayed, bytes after it are not, each exactly once', async (t) => {
  const logDir = tempDir(t);
  const guest = guestWithLog({ dir: logDir, capacity: 64, tailBytes: 8 });
  guest.append('web', 'stdout', bytes('0123456789'));
  guest.append('web', 'stderr', bytes('abcdefghij'));
  guest.append('web', 'stdout', bytes('ABCDEFGHIJ'));
  const replayed = guest.replay('web', 5);
  // What the guest machine forwards live from here on; the log only records it.
  const live = [{ stream: 'stderr' as const, data: bytes('later') }];
  guest.append('web', live[0]!.stream, live[0]!.data);
  t.same(flat([...replayed, ...live]), { tags: `${'o'.repeat(5)}${'e'.repeat(10)}${'o'.repeat(10)}${'e'.repeat(5)}`, bytes: '56789abcdefghijABCDEFGHIJlater' });
  t.ok(replayed.every((r) => r.channelId === 'ch1'), 'on the channel asked for');
  t.same(guest.replay('web', 35), [], 'a replay from the end sends nothing');
  t.same(guest.replay('nobody', 0), [], 'nor does one of a session that wrote nothing');
});

t.test('a log directory that cannot be created keeps every session in memory, says so once, and replays all of capacity', async (t) => {
  const parent = tempDir(t);
  writeFileSync(join(parent, 'file'), '');
  const { lines, log } = capture();
  const guest = guestWithLog({ dir: join(parent, 'file', 'logs'), capacity: 20, tailBytes: 4, log });
  guest.append('a', 'stdout', bytes('0123456789'));
  guest.append('a', 'stderr', bytes('abcdefghijklmno'));
  guest.append('b', 'stdout', bytes('xyz'));
  t.same(flat(guest.replay('a', 5)), { tags: `${'o'.repeat(5)}${'e'.repeat(15)}`, bytes: '56789abcdefghijklmno' });
  t.same(flat(guest.replay('b', 0)).bytes, 'xyz');
  const warnings = lines.filter((l) => / warn /.test(l));
  t.equal(warnings.length, 1, 'one warning');
  t.match(warnings[0], `cannot create the output log directory ${join(parent, 'file', 'logs')}; keeping output in memory: ENOTDIR`);
});

t.test('a session whose files fail mid-run goes on in memory and says so once', async (t) => {
  const logDir = tempDir(t);
  const { lines, log } = capture();
  const guest = guestWithLog({ dir: logDir, capacity: 80, tailBytes: 8, log });
  const dir = sessionLogDir(logDir, 'web');
  for (let i = 0; i < 5; i++) guest.append('web', 'stdout', bytes('0123456789'));
  rmSync(dir, { recursive: true });
  // The next new segment cannot be created; everything from here is in memory.
  let after = '';
  for (let i = 0; i < 10; i++) {
    const chunk = String.fromCharCode(65 + i).repeat(10);
    guest.append('web', 'stderr', bytes(chunk));
    after += chunk;
  }
  t.same(flat(guest.replay('web', 70)), { tags: 'e'.repeat(80), bytes: after.slice(20) }, 'the last capacity bytes replay from memory');
  const warnings = lines.filter((l) => / warn /.test(l));
  t.equal(warnings.length, 1);
  t.match(warnings[0], `cannot write session web's output log in ${dir}; keeping its output in memory: ENOENT`);
});

t.test('a replay whose files cannot be read sends what memory holds and says so', async (t) => {
  const logDir = tempDir(t);
  const { lines, log } = capture();
  const guest = guestWithLog({ dir: logDir, capacity: 80, tailBytes: 8, log });
  for (let i = 0; i < 3; i++) guest.append('web', 'stdout', bytes('0123456789'));
  rmSync(sessionLogDir(logDir, 'web'), { recursive: true });
  t.same(flat(guest.replay('web', 0)), { tags: 'o'.repeat(8), bytes: '23456789' }, 'the 8 bytes of the tail');
  t.match(lines.filter((l) => / warn /.test(l)), [/cannot read session web's output log in .* to replay it from offset 0; replaying what memory holds: ENOENT/]);
  guest.append('web', 'stderr', bytes('more'));
  t.same(flat(guest.replay('web', 20)).bytes, '23456789more', 'and goes on in memory');
});

t.test("files from an earlier boot are kept as the previous generation; the boot before that's are dropped, saying so", async (t) => {
  const logDir = tempDir(t);
  const boot = (output: string) => {
    const { lines, log } = capture();
    const guest = guestWithLog({ dir: logDir, capacity: 100, log });
    guest.append('web', 'stdout', bytes(output));
    guest.stop();
    return lines;
  };
  boot('first boot');
  const second = boot('second boot');
  t.equal(flat(read(sessionLogDir(logDir, 'web'))).bytes, 'second boot');
  t.equal(flat(read(sessionLogDir(logDir, 'web', 'previous'))).bytes, 'first boot');
  t.match(second.join(''), "kept session web's output log from the previous boot");
  const third = boot('third boot');
  t.equal(flat(read(sessionLogDir(logDir, 'web', 'previous'))).bytes, 'second boot');
  t.match(third.join(''), "dropped session web's output log from the boot before last");
});

t.test('"." and ".." are session IDs like any other, kept apart inside the log directory; other IDs are refused', async (t) => {
  const parent = tempDir(t);
  const logDir = join(parent, 'logs');
  const guest = guestWithLog({ dir: logDir, capacity: 100 });
  guest.append('.', 'stdout', bytes('dot'));
  guest.append('..', 'stdout', bytes('dotdot'));
  guest.append('...', 'stdout', bytes('three'));
  guest.stop();
  t.same(readdirSync(parent), ['logs'], 'nothing outside the log directory');
  t.same(readdirSync(logDir).sort(), ['....log', '...log', '..log']);
  t.equal(flat(read(sessionLogDir(logDir, '.'))).bytes, 'dot');
  t.equal(flat(read(sessionLogDir(logDir, '..'))).bytes, 'dotdot');
  t.equal(flat(read(sessionLogDir(logDir, '...'))).bytes, 'three');
  for (const id of ['', '../etc', 'a/b', 'x'.repeat(129)]) t.throws(() => sessionLogDir(logDir, id), RangeError, JSON.stringify(id));
});
