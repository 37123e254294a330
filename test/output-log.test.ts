import t from 'tap';
import fc from 'fast-check';
import { OutputLog, type OutputRecord, type OutputStream } from '../shared/outputLog.ts';

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
