import t from 'tap';
import { decideAttach, grow, type GuestContext } from '../machines/guest.ts';
import type { GuestConfig } from '../shared/config.ts';

// The guest's attach decision, alone: which opens are refused and from where
// an accepted one replays.

/** A session whose log holds [start, 5): 'hello', or its tail when older bytes were dropped for capacity. */
function context(state: GuestContext['sessions'][string], start = 0): GuestContext {
  return { config: {} as GuestConfig, sessions: { c1: state }, logs: { c1: { start, end: 5 } }, channels: {}, held: {}, announced: '', seed: 1, restarts: {}, stopped: {}, shutdown: false };
}

t.test('an unknown ID is refused naming it', async (t) => {
  t.same(decideAttach(context({ state: 'running' }), 'nope', 'live'), { accept: false, failure: { kind: 'unknown-id', message: 'unknown container ID nope' } });
});

t.test('a session that failed to launch is refused with its error', async (t) => {
  t.same(decideAttach(context({ state: 'failed', exitCode: 127, error: 'exec "x": not found' }), 'c1', 0), {
    accept: false,
    failure: { kind: 'launch-failed', message: 'exec "x": not found' },
  });
});

t.test('live output starts at the end of the log; an offset inside it replays from there', async (t) => {
  t.same(decideAttach(context({ state: 'running' }), 'c1', 'live'), { accept: true, from: 5 });
  t.same(decideAttach(context({ state: 'running' }), 'c1', 2), { accept: true, from: 2 });
});

t.test('an offset the log no longer holds starts at its oldest byte', async (t) => {
  t.same(decideAttach(context({ state: 'running' }, 3), 'c1', 1), { accept: true, from: 3 });
});

t.test('a log grows at its end and drops its oldest bytes past capacity', async (t) => {
  t.same(grow({ start: 0, end: 5 }, 3, 10), { start: 0, end: 8 });
  t.same(grow({ start: 0, end: 8 }, 4, 10), { start: 2, end: 12 });
});

t.test('an offset past the end belongs to an earlier log: the whole log is replayed', async (t) => {
  t.same(decideAttach(context({ state: 'running' }), 'c1', 2 ** 53 - 1), { accept: true, from: 0 });
});

t.test('an exited session with output left to replay is accepted; with none, refused with its code', async (t) => {
  t.same(decideAttach(context({ state: 'exited', exitCode: 3 }), 'c1', 1), { accept: true, from: 1 });
  t.same(decideAttach(context({ state: 'exited', exitCode: 3 }), 'c1', 'live'), {
    accept: false,
    failure: { kind: 'exited', message: 'container c1 exited with code 3', exitCode: 3 },
  });
});
