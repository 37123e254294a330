import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import t, { type Test } from 'tap';
import {
  ACTOR_STATUSES,
  CONTAINER_STATES,
  decodeActorStates,
  decodeAttachFailure,
  decodeAttachOpen,
  decodeContainerIds,
  decodeContainerInfo,
  decodeExitSignal,
  decodeExitStatus,
  decodeInspect,
  decodeNoPayload,
  decodeOutputOffset,
  decodeSignal,
  decodeVersion,
  decodeWindowChange,
  encodeActorStates,
  encodeAttachFailure,
  encodeAttachOpen,
  encodeContainerIds,
  encodeContainerInfo,
  encodeExitSignal,
  encodeExitStatus,
  encodeInspect,
  encodeNoPayload,
  encodeOutputOffset,
  encodeSignal,
  encodeVersion,
  encodeWindowChange,
  OFFSET_LIVE,
  Reader,
  WireError,
  Writer,
  type ActorState,
  type AttachFailure,
  type ContainerInfo,
} from '../shared/wire.ts';

/** The SSH string encoding of `text`, for hand-built payloads. */
const sshString = (text: string | Uint8Array) => new Writer('test').bytes(typeof text === 'string' ? Buffer.from(text) : text, 'test').finish();

function wireError(t: Test, fn: () => unknown, message: RegExp | string, what: string): void {
  try {
    fn();
    t.fail(`${what}: expected a WireError`);
  } catch (error) {
    t.type(error, WireError, what);
    if (typeof message === 'string') t.equal((error as Error).message, message, what);
    else t.match((error as Error).message, message, what);
  }
}

// --- arbitraries for valid values ----------------------------------------------

const containerId = fc.stringMatching(/^[\x21-\x2b\x2d-\x7e]{1,40}$/);
const text = fc.string({ unit: 'grapheme', maxLength: 40 });
const uint32 = fc.integer({ min: 0, max: 0xffffffff });
const signalName = fc.oneof(
  fc.constantFrom('TERM', 'KILL', 'WINCH', 'USR1', 'HUP', 'INT'),
  fc.stringMatching(/^[A-Z][A-Z0-9]{0,10}$/).filter((s) => !s.startsWith('SIG')),
  fc.integer({ min: 0, max: 30 }).map((n) => `RTMIN+${n}`),
);
const timestamp = fc.date({ min: new Date('1970-01-01'), max: new Date('2200-01-01'), noInvalidDate: true }).map((d) => d.toISOString());
const containerInfo: fc.Arbitrary<ContainerInfo> = fc.record(
  {
    id: containerId,
    name: text,
    cmd: fc.array(text, { maxLength: 4 }),
    tty: fc.boolean(),
    openStdin: fc.boolean(),
    primary: fc.boolean(),
    state: fc.constantFrom(...CONTAINER_STATES),
    pid: fc.integer({ min: 1, max: 4194304 }),
    exitCode: fc.integer({ min: 0, max: 255 }),
    signal: signalName,
    error: text,
    startedAt: timestamp,
    finishedAt: timestamp,
  },
  { requiredKeys: ['id', 'name', 'cmd', 'tty', 'openStdin', 'primary', 'state'], noNullPrototype: true },
);
const record = <T,>(fields: { [K in keyof T]: fc.Arbitrary<T[K]> }) => fc.record(fields, { noNullPrototype: true });
const attachFailure: fc.Arbitrary<AttachFailure> = fc.oneof(
  record({ kind: fc.constantFrom('unknown-id' as const, 'launch-failed' as const), message: text }),
  record({ kind: fc.constant('exited' as const), message: text, exitCode: fc.integer({ min: 0, max: 255 }) }),
);

const stateValue = fc.letrec<{ value: ActorState['state'] }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, text, fc.dictionary(text, tie('value'), { maxKeys: 3, noNullPrototype: true })),
})).value;
const actorState: fc.Arbitrary<ActorState> = fc.record(
  {
    path: fc.array(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }), { maxLength: 4 }),
    machine: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }),
    state: stateValue,
    status: fc.constantFrom(...ACTOR_STATUSES),
    event: text,
  },
  { requiredKeys: ['path', 'machine', 'state', 'status'], noNullPrototype: true },
);

// --- properties ------------------------------------------------------------------

const decoders: Record<string, (bytes: Uint8Array) => unknown> = {
  decodeContainerIds,
  decodeVersion,
  decodeContainerInfo,
  decodeAttachOpen,
  decodeWindowChange,
  decodeSignal,
  decodeExitStatus,
  decodeExitSignal,
  decodeOutputOffset,
  decodeInspect,
  decodeActorStates,
  decodeNoPayload: (bytes) => decodeNoPayload('ping', bytes),
  'Reader primitives': (bytes) => {
    const r = new Reader(bytes, 'primitives');
    return [r.uint32('a'), r.uint64('b'), r.bool('c'), r.string('d'), r.nameList('e'), r.bytes('f'), r.rest(), r.end()];
  },
};

t.test('every decoder, given arbitrary bytes, returns a value or throws a WireError', async (t) => {
  for (const [name, decode] of Object.entries(decoders)) {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          decode(bytes);
        } catch (error) {
          if (!(error instanceof WireError)) throw error;
        }
      }),
      { numRuns: 2000 },
    );
    t.pass(name);
  }
});

t.test('every decoder, given a well-framed SSH string of arbitrary content, returns a value or throws a WireError', async (t) => {
  // Random bytes rarely get past the length prefix; these reach the JSON, UTF-8 and name checks.
  const content = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 80 }).map((s) => Buffer.from(s)),
    fc.json({ maxDepth: 3 }).map((s) => Buffer.from(s)),
    fc.array(containerInfo.map((info) => ({ ...info, tty: 'yes' })), { maxLength: 2 }).map((v) => Buffer.from(JSON.stringify(v))),
    fc.array(actorState.chain((state) => fc.constantFrom<unknown>({ ...state, status: 'gone' }, { ...state, path: [''] }, { ...state, state: [state.state] }, state)), { maxLength: 3 })
      .map((v) => Buffer.from(JSON.stringify(v))),
    fc.uint8Array({ maxLength: 40 }),
  );
  for (const [name, decode] of Object.entries(decoders)) {
    fc.assert(
      fc.property(content, fc.uint8Array({ maxLength: 9 }), (body, tail) => {
        try {
          decode(Buffer.concat([sshString(body), tail]));
        } catch (error) {
          if (!(error instanceof WireError)) throw error;
        }
      }),
      { numRuns: 1000 },
    );
    t.pass(name);
  }
});

t.test('decodeAttachFailure never throws, whatever the reason code and description', async (t) => {
  fc.assert(
    fc.property(fc.integer(), fc.string({ unit: 'binary' }), (reason, description) => {
      const failure = decodeAttachFailure(reason, description);
      return ['unknown-id', 'launch-failed', 'exited'].includes(failure.kind) && typeof failure.message === 'string';
    }),
  );
  t.pass();
});

t.test('encode then decode is the identity for every valid value', async (t) => {
  const roundTrips: [string, fc.Arbitrary<unknown>, (v: never) => Uint8Array, (b: Uint8Array) => unknown][] = [
    ['container-ids', fc.array(containerId, { maxLength: 8 }), encodeContainerIds, decodeContainerIds],
    ['version', uint32, encodeVersion, decodeVersion],
    ['container-info', fc.array(containerInfo, { maxLength: 4 }), encodeContainerInfo, decodeContainerInfo],
    ['attach open', record({ containerId, offset: fc.bigInt({ min: 0n, max: OFFSET_LIVE }) }), encodeAttachOpen, decodeAttachOpen],
    ['window-change', record({ cols: uint32, rows: uint32, widthPx: uint32, heightPx: uint32 }), encodeWindowChange, decodeWindowChange],
    ['signal', signalName, encodeSignal, decodeSignal],
    ['exit-status', uint32, encodeExitStatus, decodeExitStatus],
    ['exit-signal', record({ name: signalName, coreDumped: fc.boolean(), message: text, lang: fc.constantFrom('', 'en-US') }), encodeExitSignal, decodeExitSignal],
    ['output-offset', fc.bigInt({ min: 0n, max: OFFSET_LIVE - 1n }), encodeOutputOffset, decodeOutputOffset],
    ['inspect', fc.boolean(), encodeInspect, decodeInspect],
    ['actor-states', fc.array(actorState, { maxLength: 4 }), encodeActorStates, decodeActorStates],
  ];
  for (const [name, arbitrary, encode, decode] of roundTrips) {
    fc.assert(fc.property(arbitrary, (value) => isDeepStrictEqual(decode(encode(value as never)), value)), { numRuns: 300 });
    t.pass(name);
  }
  fc.assert(fc.property(attachFailure, (failure) => {
    const { reason, description } = encodeAttachFailure(failure);
    return isDeepStrictEqual(decodeAttachFailure(reason, description), failure);
  }));
  t.pass('attach failure');
  t.strictSame(decodeNoPayload('ping', encodeNoPayload()), undefined, 'no payload');
});

// --- exact encodings -------------------------------------------------------------

t.test('payloads use the SSH encodings of RFC 4251 and 4254', async (t) => {
  t.strictSame(encodeContainerIds(['c1', 'exec-2']), Buffer.from('\0\0\0\x09c1,exec-2', 'latin1'), 'name-list');
  t.strictSame(encodeContainerIds([]), Buffer.from([0, 0, 0, 0]), 'empty name-list');
  t.strictSame(encodeVersion(1), Buffer.from([0, 0, 0, 1]), 'version');
  t.strictSame(
    encodeAttachOpen({ containerId: 'c1', offset: OFFSET_LIVE }),
    Buffer.from([0, 0, 0, 2, 0x63, 0x31, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
    'attach: string ID then uint64 offset',
  );
  t.strictSame(encodeWindowChange({ cols: 80, rows: 24, widthPx: 640, heightPx: 480 }), Buffer.from([0, 0, 0, 80, 0, 0, 0, 24, 0, 0, 2, 128, 0, 0, 1, 224]), 'cols, rows, width, height');
  t.strictSame(encodeSignal('TERM'), Buffer.from('\0\0\0\x04TERM', 'latin1'), 'signal');
  t.strictSame(
    encodeExitSignal({ name: 'KILL', coreDumped: true, message: 'x', lang: '' }),
    Buffer.from('\0\0\0\x04KILL\x01\0\0\0\x01x\0\0\0\0', 'latin1'),
    'exit-signal: name, core dumped, message, language tag',
  );
  const info: ContainerInfo = { id: 'c1', name: 'web', cmd: ['sh'], tty: false, openStdin: true, primary: true, state: 'running', pid: 7 };
  t.strictSame(decodeContainerInfo(sshString(JSON.stringify([info]))), [info], 'container-info is an SSH string of JSON');
  t.strictSame(new Reader(Buffer.from([2]), 'bool').bool('b'), true, 'any non-zero byte is TRUE');
});

t.test('attach failures map to open-failure reasons and kind-prefixed descriptions', async (t) => {
  t.strictSame(encodeAttachFailure({ kind: 'unknown-id', message: 'no container x' }), { reason: 1, description: 'unknown-id: no container x' });
  t.strictSame(encodeAttachFailure({ kind: 'launch-failed', message: 'ENOENT' }), { reason: 2, description: 'launch-failed: ENOENT' });
  t.strictSame(encodeAttachFailure({ kind: 'exited', message: 'done', exitCode: 137 }), { reason: 2, description: 'exited 137: done' });
});

t.test('an unrecognised open-failure description decodes to launch-failed carrying the text', async (t) => {
  t.strictSame(decodeAttachFailure(2, 'something broke'), { kind: 'launch-failed', message: 'something broke' });
  t.strictSame(decodeAttachFailure(1, 'exited 999: x'), { kind: 'launch-failed', message: 'exited 999: x' }, 'exit code out of range');
  t.strictSame(
    decodeAttachFailure(3, ''),
    { kind: 'launch-failed', message: 'channel open refused: unknown channel type (reason 3)' },
    'an empty description (ssh2 rejecting an unknown type) names the reason',
  );
});

// --- malformed input names the field ---------------------------------------------

t.test('truncated payloads name the payload, the field, the offset and what was available', async (t) => {
  wireError(t, () => decodeAttachOpen(Buffer.from([0, 0])), 'attach open: extra data truncated: need 4 bytes for container ID length at offset 0, have 2', 'ID length');
  wireError(t, () => decodeAttachOpen(Buffer.from([0, 0, 0, 2, 0x63, 0x31, 0, 0])), 'attach open: extra data truncated: need 8 bytes for offset at offset 6, have 2', 'offset');
  wireError(t, () => decodeWindowChange(Buffer.alloc(12)), 'window-change truncated: need 4 bytes for heightPx at offset 12, have 0', 'window-change');
  wireError(t, () => decodeContainerIds(Buffer.from([0, 0, 0, 9, 0x61])), 'container-ids truncated: need 9 bytes for ID list at offset 4, have 1', 'name-list');
  wireError(t, () => decodeExitSignal(sshString('TERM')), 'exit-signal truncated: need 1 bytes for core dumped at offset 8, have 0', 'exit-signal');
});

t.test('trailing bytes are refused', async (t) => {
  wireError(t, () => decodeVersion(Buffer.from([0, 0, 0, 1, 9])), 'version: 1 unexpected trailing bytes at offset 4', 'version');
  wireError(t, () => decodeNoPayload('unblock', Buffer.from([0])), 'unblock: expected no payload, got 1 bytes', 'unblock');
  wireError(t, () => decodeNoPayload('close-stdin', Buffer.alloc(3)), 'close-stdin: expected no payload, got 3 bytes', 'close-stdin');
});

t.test('invalid container IDs are refused on encode and decode', async (t) => {
  wireError(t, () => decodeContainerIds(sshString('a,,b')), 'container-ids: ID list has an empty name at position 1', 'empty name');
  wireError(t, () => decodeContainerIds(sshString('ok,has space')), /container-ids: ID 1: "has space" is not a container ID/, 'space');
  wireError(t, () => decodeContainerIds(sshString('caf\u00e9')), /ID 0: "café" is not a container ID/, 'non-ASCII');
  wireError(t, () => encodeContainerIds(['a,b']), /container-ids: ID 0: "a,b" is not a container ID/, 'comma');
  wireError(t, () => encodeContainerIds(['']), /container-ids: ID 0: "" is not a container ID/, 'empty');
  wireError(t, () => encodeAttachOpen({ containerId: 'tab\there', offset: 0n }), /attach open: extra data: container ID: "tab\\there" is not a container ID/, 'attach ID');
  wireError(t, () => decodeAttachOpen(Buffer.concat([sshString(''), Buffer.alloc(8)])), /attach open: extra data: container ID: "" is not a container ID/, 'empty attach ID');
});

t.test('container-info names the element and field that is wrong', async (t) => {
  const good = { id: 'c1', name: 'a', cmd: [], tty: false, openStdin: false, primary: false, state: 'running' };
  const decode = (value: unknown) => () => decodeContainerInfo(sshString(JSON.stringify(value)));
  wireError(t, decode([good, good, { ...good, tty: 'yes' }]), 'container-info[2].tty: expected boolean, got "yes"', 'tty');
  wireError(t, decode([{ ...good, state: 'zombie' }]), 'container-info[0].state: expected one of created|blocked|running|exited|failed, got "zombie"', 'state');
  wireError(t, decode([{ ...good, cmd: ['sh', 3] }]), 'container-info[0].cmd[1]: expected string, got 3', 'cmd element');
  wireError(t, decode([{ ...good, pid: -1 }]), 'container-info[0].pid: expected positive integer, got -1', 'pid');
  wireError(t, decode([{ ...good, exitCode: 256 }]), 'container-info[0].exitCode: expected integer 0..255, got 256', 'exitCode');
  wireError(t, decode([{ ...good, startedAt: 'yesterday' }]), 'container-info[0].startedAt: expected ISO 8601 timestamp, got "yesterday"', 'timestamp');
  wireError(t, decode([{ ...good, signal: 'SIGKILL' }]), 'container-info[0].signal: expected signal name like TERM, got "SIGKILL"', 'signal');
  wireError(t, decode([{ ...good, name: undefined }]), 'container-info[0].name: expected string, got undefined', 'missing name');
  wireError(t, decode([{ ...good, pid: null }]), 'container-info[0].pid: expected positive integer, got null', 'null optional');
  wireError(t, decode({ 0: good }), /^container-info: expected an array, got/, 'not an array');
  wireError(t, decode([7]), 'container-info[0]: expected object, got 7', 'not an object');
  wireError(t, () => decodeContainerInfo(sshString('[{')), /^container-info: invalid JSON: /, 'bad JSON');
  wireError(t, () => decodeContainerInfo(sshString(Buffer.from([0x5b, 0xff, 0x5d]))), 'container-info: JSON is not valid UTF-8', 'bad UTF-8');
  wireError(t, () => encodeContainerInfo([{ ...good, tty: 1 } as never]), 'container-info[0].tty: expected boolean, got 1', 'refused on encode too');
});

t.test('container-info drops fields it does not know, so newer guests stay readable', async (t) => {
  const info = { id: 'c1', name: 'a', cmd: ['x'], tty: true, openStdin: false, primary: true, state: 'exited', exitCode: 0, addedLater: { x: 1 } };
  const { addedLater: _, ...known } = info;
  t.strictSame(decodeContainerInfo(sshString(JSON.stringify([info]))), [known]);
});

t.test('inspect@tether is one boolean: on or off', async (t) => {
  t.strictSame(encodeInspect(true), Buffer.from([1]), 'on');
  t.strictSame(encodeInspect(false), Buffer.from([0]), 'off');
  wireError(t, () => decodeInspect(Buffer.alloc(0)), 'inspect@tether truncated: need 1 bytes for on at offset 0, have 0', 'empty');
  wireError(t, () => decodeInspect(Buffer.from([1, 1])), 'inspect@tether: 1 unexpected trailing bytes at offset 1', 'trailing');
});

t.test('actor-states is an SSH string of JSON, and names the element and field that is wrong', async (t) => {
  const good: ActorState = { path: ['link', 'ssh'], machine: 'guestSession', state: 'serving', status: 'active', event: 'SSH_AUTHENTICATED' };
  t.strictSame(decodeActorStates(sshString(JSON.stringify([good]))), [good], 'as JSON');
  const decode = (value: unknown) => () => decodeActorStates(sshString(JSON.stringify(value)));
  wireError(t, decode([good, { ...good, status: 'zombie' }]), 'actor-states[1].status: expected one of active|done|stopped, got "zombie"', 'status');
  wireError(t, decode([{ ...good, path: ['link', ''] }]), 'actor-states[0].path[1]: expected a non-empty string, got ""', 'empty actor id');
  wireError(t, decode([{ ...good, path: 'link/ssh' }]), 'actor-states[0].path: expected array of actor ids, got "link/ssh"', 'path not an array');
  wireError(t, decode([{ ...good, machine: undefined }]), 'actor-states[0].machine: expected a non-empty string, got undefined', 'missing machine');
  wireError(t, decode([{ ...good, state: { connected: ['opening'] } }]), 'actor-states[0].state.connected: expected a state name or an object of state values, got ["opening"]', 'state value');
  wireError(t, decode([{ ...good, event: 7 }]), 'actor-states[0].event: expected string, got 7', 'event');
  let deep: unknown = 'leaf';
  for (let i = 0; i < 20; i++) deep = { a: deep };
  wireError(t, decode([{ ...good, state: deep }]), /^actor-states\[0\]\.state(\.a){16}: nested deeper than 16 levels$/, 'nesting is bounded');
  wireError(t, decode({ 0: good }), /^actor-states: expected an array, got/, 'not an array');
  wireError(t, () => decodeActorStates(sshString('[')), /^actor-states: invalid JSON: /, 'bad JSON');
  wireError(t, () => encodeActorStates([{ ...good, status: 'gone' } as never]), 'actor-states[0].status: expected one of active|done|stopped, got "gone"', 'refused on encode too');
  const { event: _, ...withoutEvent } = good;
  t.strictSame(decodeActorStates(sshString(JSON.stringify([{ ...withoutEvent, addedLater: 1 }]))), [withoutEvent], 'unknown fields are dropped, the event is optional');
  t.strictSame(decodeActorStates(sshString('[{"path":[],"machine":"m","state":{"__proto__":"x"},"status":"done"}]'))[0]!.state, JSON.parse('{"__proto__":"x"}'), 'a state named __proto__ stays a state');
});

t.test('signal names must be uppercase and without the SIG prefix', async (t) => {
  for (const good of ['TERM', 'KILL', 'WINCH', 'USR1', 'RTMIN+3', 'RTMAX-2']) t.equal(decodeSignal(encodeSignal(good)), good, good);
  wireError(t, () => decodeSignal(sshString('SIGTERM')), 'signal: signal name: "SIGTERM" is not a signal name (uppercase without SIG, like TERM, USR1 or RTMIN+3)', 'SIG prefix');
  wireError(t, () => decodeSignal(sshString('term')), /"term" is not a signal name/, 'lowercase');
  wireError(t, () => encodeSignal('9'), /signal: signal name: "9" is not a signal name/, 'number');
  wireError(t, () => encodeExitSignal({ name: 'kill', coreDumped: false, message: '', lang: '' }), /exit-signal: signal name: "kill"/, 'exit-signal name');
});

t.test('values a field cannot carry are refused on encode', async (t) => {
  wireError(t, () => encodeVersion(-1), 'version: version: expected an integer 0..4294967295, got -1', 'negative uint32');
  wireError(t, () => encodeExitStatus(2 ** 32), /exit-status: exit status: expected an integer 0\.\.4294967295/, 'uint32 overflow');
  wireError(t, () => encodeAttachOpen({ containerId: 'c', offset: OFFSET_LIVE + 1n }), /offset: expected a bigint 0\.\.2\^64-1, got 18446744073709551616n/, 'uint64 overflow');
  wireError(t, () => encodeOutputOffset(OFFSET_LIVE), 'output-offset@tether: offset: must be a concrete offset, got OFFSET_LIVE', 'output offset must be concrete');
  wireError(t, () => decodeOutputOffset(Buffer.alloc(8, 0xff)), 'output-offset@tether: offset: must be a concrete offset, got OFFSET_LIVE', 'and is refused on decode');
  wireError(t, () => encodeExitSignal({ name: 'TERM', coreDumped: false, message: 'bad \ud800', lang: '' }), /message: contains a lone surrogate/, 'lone surrogate');
  wireError(t, () => encodeAttachFailure({ kind: 'exited', message: 'x' }), /attach failure: exitCode: expected integer 0\.\.255 for kind exited, got undefined/, 'exited without code');
  wireError(t, () => encodeAttachFailure({ kind: 'unknown-id', message: 'x', exitCode: 1 }), /exitCode: only kind exited carries one/, 'code on another kind');
});

t.test('strings must be valid UTF-8', async (t) => {
  wireError(t, () => decodeAttachOpen(Buffer.concat([sshString(Buffer.from([0xc3, 0x28])), Buffer.alloc(8)])), 'attach open: extra data: container ID is not valid UTF-8', 'invalid sequence');
});
