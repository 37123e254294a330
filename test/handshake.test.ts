import t from 'tap';
import fc from 'fast-check';
import { createActor, fromCallback, SimulatedClock, type Actor } from 'xstate';
import {
  ACK,
  NAK,
  PROBE,
  SYN,
  concat,
  goodAckNonce,
  goodSynNonce,
  matchEcho,
  scanAckOrSyn,
  scanProbe,
  scanSyn,
  scanSynAck,
} from '../shared/handshake.ts';
import { DEFAULT_RETRY_MS, DEFAULT_STALL_MS, handshakeMachine, type HandshakeRole, type LineWrite } from '../machines/handshake.ts';

const bytes = (...values: (number | Uint8Array)[]) =>
  Uint8Array.from(values.flatMap((v) => (typeof v === 'number' ? [v] : [...v])));

t.test('codec', async (t) => {
  t.test('the probe is VIC\'s 23-byte coloured hello world line', async (t) => {
    t.equal(PROBE.length, 23);
    t.same([...PROBE], [...Buffer.from('\x1b[32mhello world\x1b[39m!\n', 'latin1')]);
  });

  t.test('the responder answers the latest complete SYN and skips everything before it', async (t) => {
    t.match(scanSyn(bytes(1, 2, SYN, 7, 9, SYN, 8, 3)), { found: true, p: 8, end: 7 });
    t.match(scanSyn(bytes(1, 2, 3)), { found: false, keepFrom: 3 });
  });

  t.test('a SYN in the last byte waits for its nonce, or lets the SYN before it answer', async (t) => {
    t.match(scanSyn(bytes(4, 5, SYN)), { found: false, keepFrom: 2 });
    t.match(scanSyn(bytes(SYN)), { found: false, keepFrom: 0 });
    t.match(scanSyn(bytes(SYN, 9, 5, SYN)), { found: true, p: 9, end: 2 });
    // A peer that picked SYN as its nonce.
    t.match(scanSyn(bytes(SYN, SYN)), { found: true, p: SYN, end: 2 });
  });

  t.test('the responder takes ACK q+1 anywhere, restarts on a new SYN, skips stale ACKs', async (t) => {
    t.match(scanAckOrSyn(bytes(ACK, 3, 0, ACK, 6), 5), { found: true, frame: 'ack', end: 5 });
    t.match(scanAckOrSyn(bytes(SYN, ACK, 6), 5), { found: true, frame: 'ack', end: 3 });
    t.match(scanAckOrSyn(bytes(ACK, 3, SYN, 40), 5), { found: true, frame: 'syn' });
    t.match(scanAckOrSyn(bytes(ACK, 3, 9, ACK), 5), { found: false, keepFrom: 3 });
    t.match(scanAckOrSyn(bytes(7, SYN), 5), { found: false, keepFrom: 1 });
  });

  t.test('the initiator finds the first ACK p+1 q and keeps a partial one', async (t) => {
    t.match(scanSynAck(bytes(NAK, ACK, 9, 1, ACK, 8, 77, 100), 7), { found: true, q: 77, end: 7 });
    t.match(scanSynAck(bytes(1, 2, ACK, 8), 7), { found: false, keepFrom: 2 });
    t.match(scanSynAck(bytes(1, ACK), 7), { found: false, keepFrom: 1 });
    t.match(scanSynAck(bytes(ACK, 0), 0xff), { found: false, keepFrom: 0 }, 'p+1 wraps to 0');
  });

  t.test('the initiator finds the probe after noise and keeps a possible start of it', async (t) => {
    t.match(scanProbe(concat(bytes(1, 2, 0x1b), concat(PROBE, bytes(ACK)))), { found: true, end: 26 });
    t.match(scanProbe(concat(bytes(5, 5), PROBE.subarray(0, 10))), { found: false, keepFrom: 2 });
  });

  t.test('the echo must match the probe byte for byte from its first byte', async (t) => {
    t.equal(matchEcho(PROBE.subarray(0, 5)), 'partial');
    t.equal(matchEcho(concat(PROBE, bytes(1))), 'match');
    t.equal(matchEcho(concat(bytes(0), PROBE)), 'mismatch');
  });

  t.test('our nonces never make a frame ambiguous', async (t) => {
    t.notOk(goodSynNonce(SYN));
    t.notOk(goodSynNonce(ACK - 1), 'p+1 would be ACK');
    t.notOk(goodAckNonce(SYN - 1), 'q+1 would be SYN');
    t.ok(goodSynNonce(0x41) && goodAckNonce(0x41));
  });
});

/**
 * Two handshake machines and the line between them, all in memory. The test
 * plays the line: it decides when and in which pieces bytes arrive, may put
 * noise on it, and moves the simulated clock. Once a side is done it writes
 * its payload (its "SSH bytes") at once; what each side receives after its
 * handshake (leftover included) is collected.
 */
class Line {
  readonly clock = new SimulatedClock();
  readonly transcript: { from: HandshakeRole; data: Uint8Array }[] = [];
  readonly sides: Record<HandshakeRole, Side>;
  /** Called with every handshake write; may alter what goes on the line. */
  tamper: (from: HandshakeRole, data: Uint8Array) => Uint8Array = (_, data) => data;

  constructor(
    seeds: { initiator: number; responder: number },
    payloads: { initiator: Uint8Array; responder: Uint8Array },
    stale?: { initiator: Uint8Array; responder: Uint8Array },
    /** Which ends run; a test may play the other end itself. */
    roles: HandshakeRole[] = ['responder', 'initiator'],
  ) {
    this.sides = {
      initiator: new Side('initiator', payloads.initiator, stale?.initiator),
      responder: new Side('responder', payloads.responder, stale?.responder),
    };
    // Responder first: the initiator writes its SYN as it starts.
    for (const role of roles) {
      const side = this.sides[role];
      const parent = createActor(
        fromCallback<LineWrite>(({ receive }) =>
          receive((event) => {
            if (event.type !== 'LINE_WRITE') return;
            const data = this.tamper(role, event.data);
            this.transcript.push({ from: role, data });
            this.peer(role).inbox = concat(this.peer(role).inbox, data);
          }),
        ),
        // A child uses its parent's system, and so its clock.
        { clock: this.clock },
      ).start();
      side.actor = createActor(handshakeMachine, { input: { role, seed: seeds[role] }, parent });
      side.actor.subscribe({
        complete: () => {
          side.received = [side.actor.getSnapshot().output!.leftover];
          this.peer(role).inbox = concat(this.peer(role).inbox, side.payload);
        },
      });
      side.actor.start();
    }
  }

  peer(role: HandshakeRole): Side {
    return this.sides[role === 'initiator' ? 'responder' : 'initiator'];
  }

  /** Delivers up to `n` pending bytes to `role` as one chunk. */
  deliver(role: HandshakeRole, n = Infinity): void {
    const side = this.sides[role];
    const chunk = side.inbox.subarray(0, n);
    side.inbox = side.inbox.subarray(chunk.length);
    if (chunk.length === 0) return;
    if (side.received) side.received.push(chunk);
    else side.actor.send({ type: 'LINE_BYTES', data: chunk });
  }

  get idle(): boolean {
    return this.sides.initiator.inbox.length === 0 && this.sides.responder.inbox.length === 0;
  }

  /** Prompt delivery, the clock moving only while the line is idle, until both are done. */
  settle(maxRounds = 200): boolean {
    for (let round = 0; round < maxRounds; round++) {
      while (!this.idle) {
        this.deliver('responder');
        this.deliver('initiator');
      }
      if (this.sides.initiator.received && this.sides.responder.received) return true;
      this.clock.increment(DEFAULT_RETRY_MS);
    }
    return false;
  }
}

class Side {
  actor!: Actor<typeof handshakeMachine>;
  inbox: Uint8Array;
  /** Everything received since the handshake finished, starting with the leftover. */
  received: Uint8Array[] | undefined;

  constructor(
    readonly role: HandshakeRole,
    readonly payload: Uint8Array,
    stale: Uint8Array = new Uint8Array(0),
  ) {
    this.inbox = stale;
  }

  get state(): string {
    const value = this.actor.getSnapshot().value;
    return typeof value === 'string' ? value : Object.values(value)[0] as string;
  }

  /** Still looking for its first frames: noise here must be survivable. */
  get searching(): boolean {
    return this.role === 'initiator' ? ['awaitSynAck', 'awaitProbe'].includes(this.state) : ['awaitSyn', 'awaitAck'].includes(this.state);
  }

  get after(): Uint8Array {
    return (this.received ?? []).reduce(concat, new Uint8Array(0));
  }
}

const text = (s: string) => new TextEncoder().encode(s);
const BANNERS = { initiator: text('SSH-2.0-appliance\r\n'), responder: text('SSH-2.0-guest\r\n') };

t.test('on a clean line the exchange is exactly VIC\'s byte sequence', async (t) => {
  const line = new Line({ initiator: 11, responder: 22 }, BANNERS);
  t.ok(line.settle());
  const [syn, synAck, ack, probe, echo, final] = line.transcript;
  const p = syn!.data[1]!;
  const q = synAck!.data[2]!;
  t.same(
    line.transcript.slice(0, 6).map(({ from, data }) => [from, [...data]]),
    [
      ['initiator', [SYN, p]],
      ['responder', [ACK, (p + 1) & 0xff, q]],
      ['initiator', [ACK, (q + 1) & 0xff]],
      ['responder', [...PROBE]],
      ['initiator', [...PROBE]],
      ['responder', [ACK]],
    ],
  );
  t.ok(probe && echo && final && ack);
  t.equal(line.transcript.length, 6, 'nothing else is written');
  t.same(line.sides.initiator.after, BANNERS.responder, 'the guest\'s first SSH bytes reach the appliance');
  t.same(line.sides.responder.after, BANNERS.initiator);
});

t.test('the final ACK and the first SSH bytes in one chunk: the SSH bytes are the leftover', async (t) => {
  const line = new Line({ initiator: 3, responder: 4 }, BANNERS);
  // Deliver to the initiator only once the responder has finished and written its banner.
  for (let i = 0; i < 10 && !line.sides.responder.received; i++) {
    line.deliver('responder');
    if (!line.sides.responder.received) line.deliver('initiator');
  }
  t.ok(line.sides.responder.received);
  line.deliver('initiator');
  t.same(line.sides.initiator.actor.getSnapshot().output?.leftover, BANNERS.responder);
});

t.test('bytes arriving one at a time (a chunk boundary at every position) still sync', async (t) => {
  const line = new Line({ initiator: 5, responder: 6 }, BANNERS);
  for (let i = 0; i < 1000 && !line.idle; i++) {
    line.deliver('responder', 1);
    line.deliver('initiator', 1);
  }
  t.ok(line.sides.initiator.received && line.sides.responder.received);
  t.same(line.sides.initiator.after, BANNERS.responder);
  t.same(line.sides.responder.after, BANNERS.initiator);
});

t.test('every split of every message into two chunks still syncs', async (t) => {
  for (let at = 0; at <= PROBE.length; at++) {
    const line = new Line({ initiator: 100 + at, responder: 200 + at }, BANNERS);
    for (let i = 0; i < 50 && !line.idle; i++) {
      for (const role of ['responder', 'initiator'] as const) {
        line.deliver(role, at);
        line.deliver(role);
      }
    }
    t.same(line.sides.initiator.after, BANNERS.responder, `split at ${at}`);
    t.same(line.sides.responder.after, BANNERS.initiator, `split at ${at}`);
  }
});

t.test('with nobody answering, the initiator sends a fresh SYN every retry interval', async (t) => {
  const line = new Line({ initiator: 9, responder: 9 }, BANNERS, undefined, ['initiator']);
  line.clock.increment(DEFAULT_RETRY_MS - 1);
  t.equal(line.transcript.length, 1);
  line.clock.increment(1);
  line.clock.increment(DEFAULT_RETRY_MS);
  const syns = line.transcript.map(({ data }) => [...data]);
  t.equal(syns.length, 3);
  t.ok(syns.every((f) => f[0] === SYN && f.length === 2));
  t.not(syns[1]![1], syns[0]![1], 'each SYN has a new nonce');
  t.not(syns[2]![1], syns[1]![1]);
});

t.test('a stalled responder goes back to waiting for SYN and answers the next one', async (t) => {
  const line = new Line({ initiator: 1, responder: 2 }, BANNERS, undefined, ['responder']);
  line.sides.responder.inbox = bytes(SYN, 0x20);
  line.deliver('responder');
  t.equal(line.sides.responder.state, 'awaitAck');
  line.clock.increment(DEFAULT_STALL_MS);
  t.equal(line.sides.responder.state, 'awaitSyn');
  line.sides.responder.actor.send({ type: 'LINE_BYTES', data: bytes(SYN, 0x30) });
  t.same([...line.transcript.at(-1)!.data].slice(0, 2), [ACK, 0x31]);
});

t.test('of several SYNs in one read the latest is answered', async (t) => {
  const line = new Line({ initiator: 1, responder: 2 }, BANNERS, undefined, ['responder']);
  line.sides.responder.inbox = bytes(SYN, 0x40, 0, SYN, 0x50, SYN, 0x60);
  line.deliver('responder');
  t.same([...line.transcript.at(-1)!.data].slice(0, 2), [ACK, 0x61]);
});

t.test('a corrupted echo is answered with NAK and the exchange starts over', async (t) => {
  const line = new Line({ initiator: 7, responder: 8 }, BANNERS);
  let corrupted = false;
  line.tamper = (from, data) => {
    if (from !== 'initiator' || corrupted || data.length !== PROBE.length) return data;
    corrupted = true;
    const bad = data.slice();
    bad[5] ^= 0x20;
    return bad;
  };
  t.ok(line.settle());
  const frames = line.transcript.map(({ from, data }) => `${from}:${[...data].slice(0, 1)}`);
  t.ok(frames.includes(`responder:${NAK}`), 'the responder sent NAK');
  t.ok(line.sides.initiator.state === 'done' && line.sides.responder.state === 'done');
  t.same(line.sides.initiator.after, BANNERS.responder);
  t.same(line.sides.responder.after, BANNERS.initiator);
});

/** A scripted peer that behaves as VIC's Go code, one read at a time. */
t.test('interoperates with VIC\'s HandshakeClient, even when it picks SYN as its nonce', async (t) => {
  for (const p of [SYN, 0xff, 0x00, 0x41]) {
    const line = new Line({ initiator: 1, responder: 31 }, BANNERS, undefined, ['responder']);
    const responder = line.sides.responder.actor;
    responder.send({ type: 'LINE_BYTES', data: bytes(SYN, p) });
    const synAck = line.transcript[0]!.data;
    t.same([...synAck].slice(0, 2), [ACK, (p + 1) & 0xff], `p=${p}: SYN-ACK at the first attempt`);
    responder.send({ type: 'LINE_BYTES', data: bytes(ACK, (synAck[2]! + 1) & 0xff) });
    t.same(line.transcript[1]!.data, PROBE);
    responder.send({ type: 'LINE_BYTES', data: PROBE });
    t.same([...line.transcript[2]!.data], [ACK]);
    t.equal(line.sides.responder.state, 'done');
  }
});

t.test('interoperates with VIC\'s HandshakeServer', async (t) => {
  const line = new Line({ initiator: 77, responder: 1 }, BANNERS, undefined, ['initiator']);
  const initiator = line.sides.initiator.actor;
  const [syn] = line.transcript;
  const q = SYN; // VIC draws q from crypto/rand: any byte.
  initiator.send({ type: 'LINE_BYTES', data: bytes(ACK, (syn!.data[1]! + 1) & 0xff, q) });
  t.same([...line.transcript[1]!.data], [ACK, (q + 1) & 0xff]);
  initiator.send({ type: 'LINE_BYTES', data: PROBE });
  t.same(line.transcript[2]!.data, PROBE);
  initiator.send({ type: 'LINE_BYTES', data: concat(bytes(ACK), BANNERS.responder) });
  t.equal(line.sides.initiator.state, 'done');
  t.same(line.sides.initiator.after, BANNERS.responder);
});

/**
 * Noise biased towards the bytes the scanners care about: flags, stray SYNs,
 * ACK frames for random nonces, pieces of the probe. A complete probe goes
 * only towards the responder: towards the initiator, a stale probe behind an
 * `ACK p+1 q` that happens to carry its nonce replays an exchange that cannot
 * be told from a live one (see machines/handshake.ts).
 */
const noise = (maxLength: number, wholeProbes: boolean) =>
  fc
    .array(
      fc.oneof(
        fc.uint8Array({ maxLength: 4096, size: 'max' }),
        fc.constantFrom(bytes(SYN), bytes(ACK), bytes(NAK), PROBE.subarray(0, 9), PROBE.subarray(1), wholeProbes ? PROBE : PROBE.subarray(0, 22)),
        fc.integer({ min: 0, max: 255 }).map((p) => bytes(SYN, p)),
        fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 })).map(([a, b]) => bytes(ACK, a, b)),
      ),
      // 'max': lengths spread over the whole range, up to 64 KiB of noise.
      { maxLength: 64, size: 'max' },
    )
    .map((parts) => parts.reduce(concat, new Uint8Array(0)).subarray(0, maxLength))
    .filter((data) => wholeProbes || !scanProbe(data).found);

const KiB64 = 64 * 1024;
const role = fc.constantFrom<HandshakeRole>('initiator', 'responder');
const step = fc.oneof(
  fc.record({ kind: fc.constant('deliver' as const), to: role, size: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ kind: fc.constant('noise' as const), to: fc.constant('initiator' as const), data: noise(KiB64, false) }),
  fc.record({ kind: fc.constant('noise' as const), to: fc.constant('responder' as const), data: noise(KiB64, true) }),
  fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 2 * DEFAULT_STALL_MS }) }),
);

t.test('property: stale bytes, noise while searching, repeated SYNs, any chunking and a NAK: both sync and SSH bytes arrive intact', async (t) => {
  fc.assert(
    fc.property(
      fc.record({
        seeds: fc.record({ initiator: fc.integer({ min: 0, max: 2 ** 32 - 1 }), responder: fc.integer({ min: 0, max: 2 ** 32 - 1 }) }),
        stale: fc.record({ initiator: noise(KiB64, false), responder: noise(KiB64, true) }),
        payloads: fc.record({ initiator: fc.uint8Array({ minLength: 1, maxLength: 2048 }), responder: fc.uint8Array({ minLength: 1, maxLength: 2048 }) }),
        steps: fc.array(step, { maxLength: 80 }),
        corruptEcho: fc.boolean(),
      }),
      ({ seeds, stale, payloads, steps, corruptEcho }) => {
        const line = new Line(seeds, payloads, stale);
        let corrupt = corruptEcho;
        line.tamper = (from, data) => {
          if (!corrupt || from !== 'initiator' || data.length !== PROBE.length) return data;
          corrupt = false;
          const bad = data.slice();
          bad[data.length - 1] ^= 0xff;
          return bad;
        };
        for (const s of steps) {
          if (s.kind === 'deliver') line.deliver(s.to, s.size);
          // Noise lands between frames, on a side still searching for its
          // first frames; once a side awaits a verdict, anything is taken for
          // one, so there the line must be clean.
          else if (s.kind === 'noise' && line.sides[s.to].searching && line.sides[s.to].inbox.length === 0) line.sides[s.to].inbox = s.data;
          // Time passes only while nothing is in flight: latency below the retry interval.
          else if (s.kind === 'tick' && line.idle) line.clock.increment(s.ms);
        }
        if (!line.settle()) return false;
        const nakSent = line.transcript.some(({ from, data }) => from === 'responder' && data.length === 1 && data[0] === NAK);
        return (
          Buffer.from(line.sides.initiator.after).equals(payloads.responder) &&
          Buffer.from(line.sides.responder.after).equals(payloads.initiator) &&
          (!corruptEcho || nakSent)
        );
      },
    ),
    { numRuns: 300 },
  );
  t.pass('held for every generated line');
});
