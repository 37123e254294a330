import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createActor, fromCallback, setup, SimulatedClock, type AnyActorRef, type EventObject } from 'xstate';
import { createOutputLogActor } from '../actors/outputLog.ts';
import { composeGuest } from '../guest/composition.ts';
import { holdBytes, REPLAY_PIECE_BYTES, STALL_LIMIT_MS, type GuestEvent, type SshServerCommand } from '../machines/guest.ts';
import type { ProcessCommand, ProcessInput, ProcessReport } from '../machines/processSession.ts';
import type { GuestConfig } from '../shared/config.ts';
import { DEFAULT_SECURITY } from '../shared/security.ts';

// The backpressure policy as the guest machine decides it (docs/PROTOCOL.md,
// "Backpressure"), on a simulated clock: a process the test makes write, the
// real output log over a temporary directory, and an SSH server that records
// what it is told and whose windows fill and open when the test says.

const CAPACITY = 64 * 1024;
const CHUNK = 8 * 1024;

function world(t: Test, capacity = CAPACITY) {
  const dir = mkdtempSync(join(tmpdir(), 'tether-flow-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config: GuestConfig = {
    id: 'main', name: 'flow', hostname: 'flow',
    sessions: { main: { cmd: ['x'], env: [], cwd: '/', tty: false, openStdin: false, runBlock: false, stopSignal: 'TERM', stopTimeout: 10, restart: { name: 'no' } } },
    ssh: { hostKey: 'unused', authorizedKeys: [] }, serial: { device: '/dev/null' },
    outputLogBytes: capacity, rootfs: 'host', logDir: dir, hide: [], security: DEFAULT_SECURITY,
  };
  const toServer: SshServerCommand[] = [];
  /** Bytes each channel may still be sent before its window is full (absent: no limit). */
  const windows = new Map<string, number>();
  const toProcess: ProcessCommand['type'][] = [];
  let report: (event: ProcessReport) => void = () => {};
  let written = 0;
  const process = fromCallback<ProcessCommand, ProcessInput>(({ sendBack, receive }) => {
    report = sendBack;
    receive((command) => {
      toProcess.push(command.type);
      if (command.type === 'LAUNCH') sendBack({ type: 'PROCESS_STARTED', pid: 100 });
    });
  });
  const idle = fromCallback<EventObject>(() => {});
  const root = setup({
    actors: {
      guest: composeGuest({ process, port: idle, server: idle, outputLog: createOutputLogActor({ dir, capacity }), sweeper: idle }),
      server: fromCallback<SshServerCommand>(({ receive, system }) =>
        receive((command) => {
          toServer.push(command);
          if (command.type !== 'CHANNEL_OUTPUT' || !windows.has(command.channelId)) return;
          const left = windows.get(command.channelId)! - command.data.length;
          windows.set(command.channelId, left);
          // As ssh2 does: the write that fills the window is taken, and says so.
          if (left <= 0) {
            windows.delete(command.channelId);
            (system.get('guest') as AnyActorRef).send({ type: 'CHANNEL_BLOCKED', channelId: command.channelId });
          }
        }),
      ),
    },
  }).createMachine({
    invoke: [
      { id: 'server', src: 'server', systemId: 'sshServer' },
      { id: 'guest', src: 'guest', systemId: 'guest', input: { config, seed: 1 } },
    ],
  });
  const clock = new SimulatedClock();
  const actor = createActor(root, { clock }).start();
  t.teardown(() => actor.stop());
  const guest = actor.system.get('guest') as AnyActorRef;
  const send = (event: GuestEvent) => guest.send(event);
  /** Every byte a channel was sent, in order. */
  const received = (channelId: string) =>
    Buffer.concat(toServer.flatMap((c) => (c.type === 'CHANNEL_OUTPUT' && c.channelId === channelId ? [Buffer.from(c.data)] : [])));
  return {
    clock,
    toProcess,
    received,
    exits: (channelId: string) => toServer.filter((c) => c.type === 'CHANNEL_EXIT' && c.channelId === channelId),
    /** The process writes `chunks` chunks of CHUNK bytes, each byte its offset's low bits. */
    write(chunks: number) {
      for (let i = 0; i < chunks; i++) {
        const data = Buffer.alloc(CHUNK);
        for (let j = 0; j < CHUNK; j++) data[j] = (written + j) & 0xff;
        written += CHUNK;
        report({ type: 'PROCESS_OUTPUT', stream: 'stdout', data });
      }
    },
    /** All the process has written so far. */
    all: () => {
      const data = Buffer.alloc(written);
      for (let j = 0; j < written; j++) data[j] = j & 0xff;
      return data;
    },
    exit: (exitCode: number) => report({ type: 'PROCESS_EXITED', exitCode }),
    attach: (channelId: string) => send({ type: 'ATTACH_OPEN', channelId, containerId: 'main', offset: 'live' }),
    full: (channelId: string) => send({ type: 'CHANNEL_BLOCKED', channelId }),
    /** The window opens for `bytes` (all it is owed, without a limit). */
    open: (channelId: string, bytes?: number) => {
      if (bytes !== undefined) windows.set(channelId, bytes);
      send({ type: 'CHANNEL_READY', channelId });
    },
    pauses: () => toProcess.filter((c) => c === 'PAUSE_OUTPUT' || c === 'RESUME_OUTPUT'),
  };
}

t.test('a channel whose window is full gets nothing more; the other stays live; once it opens, the log gives it what it missed, in order', async (t) => {
  const w = world(t);
  w.attach('slow');
  w.attach('fast');
  w.write(1);
  w.full('slow');
  w.write(2);
  t.equal(w.received('fast').length, 3 * CHUNK, 'the other channel got every chunk live');
  t.equal(w.received('slow').length, CHUNK, 'the full one got nothing after it filled');
  w.open('slow');
  t.ok(w.received('slow').equals(w.all()), 'once it opened, the log replayed what it missed');
  w.write(1);
  t.ok(w.received('slow').equals(w.all()), 'and it is live again');
  t.same(w.pauses(), [], 'the process was never held: no channel was half a log behind');
});

t.test('a channel half a log behind holds the process while it reads, and releases it once it has caught up', async (t) => {
  const w = world(t);
  w.attach('slow');
  w.full('slow');
  w.write(holdBytes(CAPACITY) / CHUNK - 1);
  t.same(w.pauses(), [], 'not yet half a log behind');
  w.write(1);
  t.same(w.pauses(), ['PAUSE_OUTPUT'], 'half a log behind: the process is held');
  w.clock.increment(STALL_LIMIT_MS - 1);
  w.open('slow');
  t.same(w.pauses(), ['PAUSE_OUTPUT', 'RESUME_OUTPUT'], 'caught up: released');
  t.ok(w.received('slow').equals(w.all()), 'with every byte');
  w.clock.increment(STALL_LIMIT_MS);
  t.same(w.pauses(), ['PAUSE_OUTPUT', 'RESUME_OUTPUT'], 'no stall timer was left behind');
});

t.test('a channel that holds the process and reads nothing for the stall limit is cut loose; caught up, it holds again', async (t) => {
  const w = world(t);
  w.attach('stuck');
  w.full('stuck');
  w.write(holdBytes(CAPACITY) / CHUNK);
  t.same(w.pauses(), ['PAUSE_OUTPUT']);
  w.clock.increment(STALL_LIMIT_MS - 1);
  t.same(w.pauses(), ['PAUSE_OUTPUT'], 'held until the stall limit');
  w.clock.increment(1);
  t.same(w.pauses(), ['PAUSE_OUTPUT', 'RESUME_OUTPUT'], 'then released');
  w.write(2 * (CAPACITY / CHUNK));
  t.same(w.pauses(), ['PAUSE_OUTPUT', 'RESUME_OUTPUT'], 'a loose channel holds nothing, however far behind');

  w.open('stuck');
  const got = w.received('stuck');
  const all = w.all();
  t.ok(got.subarray(got.length - CAPACITY).equals(all.subarray(all.length - CAPACITY)), 'it gets what the log still holds, ending with the last byte');
  t.ok(got.length < all.length, `and lost what the log dropped (${all.length - got.length} bytes)`);

  w.full('stuck');
  w.write(holdBytes(CAPACITY) / CHUNK);
  t.same(w.pauses(), ['PAUSE_OUTPUT', 'RESUME_OUTPUT', 'PAUSE_OUTPUT'], 'caught up, it is an ordinary reader again');
});

t.test('a reader that keeps reading is never cut loose, however long it holds the process', async (t) => {
  // A log larger than a replay piece, so that reading one piece leaves the reader still holding.
  const capacity = 1024 * 1024;
  const chunk = 64 * 1024;
  const w = world(t, capacity);
  w.attach('steady');
  w.full('steady');
  w.write((capacity - chunk) / CHUNK);
  t.same(w.pauses(), ['PAUSE_OUTPUT']);
  for (let i = 0; i < 5; i++) {
    w.clock.increment(STALL_LIMIT_MS - 1);
    // It reads one piece, and its window fills again.
    w.open('steady', 1);
    w.write(REPLAY_PIECE_BYTES / CHUNK);
  }
  t.same(w.pauses(), ['PAUSE_OUTPUT'], `still held after ${(5 * (STALL_LIMIT_MS - 1)) / 1000} s, and never cut loose`);
  w.open('steady');
  t.same(w.pauses(), ['PAUSE_OUTPUT', 'RESUME_OUTPUT'], 'released once it caught up');
  t.ok(w.received('steady').equals(w.all()), 'every byte, in order');
});

t.test('the exit status reaches a channel that is behind only after its last byte', async (t) => {
  const w = world(t);
  w.attach('late');
  w.full('late');
  w.write(2);
  w.exit(3);
  t.same(w.exits('late'), [], 'no status while bytes are owed');
  w.open('late');
  t.ok(w.received('late').equals(w.all()), 'every byte');
  t.match(w.exits('late'), [{ exitCode: 3 }], 'then the status');
});
