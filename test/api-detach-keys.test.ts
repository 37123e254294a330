import fc from 'fast-check';
import t from 'tap';
import { DEFAULT_DETACH_KEYS, DetachKeyScanner, parseDetachKeys } from '../appliance/api/detachKeys.ts';
import { ApiError } from '../appliance/api/errors.ts';

t.test("detach keys are parsed in Docker's notation", async (t) => {
  t.same([...parseDetachKeys(null)], [16, 17], 'absent means ctrl-p,ctrl-q');
  t.same([...parseDetachKeys('')], [...DEFAULT_DETACH_KEYS], 'empty means the default too');
  t.same([...parseDetachKeys('ctrl-a,x')], [1, 0x78]);
  t.same([...parseDetachKeys('ctrl-@,ctrl-z,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_,DEL,~')], [0, 26, 27, 28, 29, 30, 31, 127, 0x7e]);
});

t.test('unknown detach keys are a 400 naming the key', async (t) => {
  for (const [spec, key] of [
    ['ctrl-A', 'ctrl-A'],
    ['ctrl-', 'ctrl-'],
    ['ab', 'ab'],
    ['ctrl-a,,x', ''],
    ['é', 'é'],
  ]) {
    t.throws(
      () => parseDetachKeys(spec!),
      new ApiError(400, `Invalid detach keys (${spec}) provided: unknown key ${JSON.stringify(key)}`),
      spec,
    );
  }
});

/** Runs chunks through a scanner the way the attach session does. */
function scanAll(keys: Uint8Array, chunks: Uint8Array[]): { forwarded: number[]; detachedAt?: number } {
  const scanner = new DetachKeyScanner(keys);
  const forwarded: number[] = [];
  for (const [index, chunk] of chunks.entries()) {
    const { forward, detached } = scanner.scan(chunk);
    forwarded.push(...forward);
    if (detached) return { forwarded, detachedAt: index };
  }
  forwarded.push(...scanner.flush());
  return { forwarded };
}

t.test('a partial sequence that stops matching is forwarded, including a restart inside it', async (t) => {
  const keys = parseDetachKeys('ctrl-p,ctrl-q');
  t.same(scanAll(keys, [Buffer.from('a\x10b')]), { forwarded: [0x61, 0x10, 0x62] });
  t.same(scanAll(keys, [Buffer.from('\x10\x10\x11rest')]), { forwarded: [0x10], detachedAt: 0 });
  t.same(scanAll(keys, [Buffer.from('ab\x10'), Buffer.from('\x11'), Buffer.from('never')]), { forwarded: [0x61, 0x62], detachedAt: 1 });
  t.same(scanAll(keys, [Buffer.from('end\x10')]), { forwarded: [...Buffer.from('end\x10')] }, 'a prefix held at the end is flushed');
});

t.test('for any keys, input and chunking: forwards exactly the bytes before the first occurrence, then detaches', async (t) => {
  // A three-letter alphabet makes occurrences, near misses and overlaps common.
  const byte = fc.constantFrom(0x61, 0x62, 0x63);
  fc.assert(
    fc.property(
      fc.uint8Array({ min: 0x61, max: 0x63, minLength: 1, maxLength: 4 }),
      fc.array(byte, { maxLength: 40 }),
      fc.array(fc.nat({ max: 40 }), { maxLength: 6 }),
      (keys, input, cuts) => {
        const bounds = [0, ...cuts.map((cut) => Math.min(cut, input.length)).sort((a, b) => a - b), input.length];
        const chunks = bounds.slice(1).map((end, i) => Uint8Array.from(input.slice(bounds[i], end)));
        const first = Buffer.from(input).indexOf(Buffer.from(keys));
        const result = scanAll(keys, chunks);
        if (first === -1) {
          return result.detachedAt === undefined && Buffer.from(result.forwarded).equals(Buffer.from(input));
        }
        // Detached in the first chunk that reaches the end of that occurrence.
        return (
          Buffer.from(result.forwarded).equals(Buffer.from(input.slice(0, first))) &&
          result.detachedAt === chunks.findIndex((_, i) => bounds[i + 1]! >= first + keys.length)
        );
      },
    ),
    { numRuns: 5000 },
  );
  t.pass('5000 generated cases agree with the model');
});
