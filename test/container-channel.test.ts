import t from 'tap';
import { createActor, fromCallback, fromPromise, toPromise } from 'xstate';
import { containerChannelMachine, type ChannelActorInput, type ChannelCommand, type UserCommand } from '../machines/containerChannel.ts';

/** The machine with scripted links, channels and user: those are other code here. */
function harness(options: { links?: string[]; offset?: number | 'live' } = {}) {
  const links = [...(options.links ?? ['L1', 'L2'])];
  const opened: ChannelActorInput[] = [];
  const toChannel: ChannelCommand[] = [];
  const toUser: UserCommand[] = [];
  let channel: { sendBack: (e: any) => void } | undefined;
  const closed: ChannelActorInput[] = [];
  const machine = containerChannelMachine.provide({
    actors: {
      lookup: fromPromise(async ({ input }) => {
        const linkId = links.shift();
        if (!linkId) throw new Error(`waited ${input.timeoutMs} ms for a connection carrying container ${input.containerId}`);
        return { linkId };
      }),
      channel: fromCallback<ChannelCommand, ChannelActorInput>(({ input, receive, sendBack }) => {
        opened.push(input);
        channel = { sendBack };
        receive((c) => toChannel.push(c));
        return () => closed.push(input);
      }),
      user: fromCallback<UserCommand>(({ receive }) => receive((c) => toUser.push(c))),
    },
  });
  const actor = createActor(machine, { input: { containerId: 'c1', offset: options.offset ?? 'live', timeoutMs: 1000 } });
  actor.start();
  const settle = () => new Promise((r) => setTimeout(r, 5));
  return { actor, opened, closed, toChannel, toUser, guest: () => channel!, settle, user: (e: any) => actor.send(e) };
}

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (cmds: UserCommand[]) => cmds.filter((c) => c.type === 'OUTPUT').map((c) => new TextDecoder().decode((c as any).data)).join('');

t.test('an opened channel is unblocked, then output streams to the user and the exit code ends it', async (t) => {
  const h = harness();
  await h.settle();
  t.same(h.opened, [{ linkId: 'L1', containerId: 'c1', offset: 'live' }]);
  h.guest().sendBack({ type: 'CHANNEL_OPENED', offset: 0 });
  t.same(h.toChannel[0], { type: 'UNBLOCK' });
  h.guest().sendBack({ type: 'OUTPUT', stream: 'stdout', data: bytes('hi\n') });
  h.guest().sendBack({ type: 'EXIT', exitCode: 3 });
  h.guest().sendBack({ type: 'OUTPUT', stream: 'stdout', data: bytes('late') });
  const outcome = await toPromise(h.actor);
  t.same(outcome, { outcome: 'exited', exitCode: 3, signal: undefined, error: undefined, failure: undefined });
  t.equal(text(h.toUser), 'hi\n', 'nothing is forwarded after the exit status');
});

t.test('input typed before the channel opens is delivered in order, then the stdin close', async (t) => {
  const h = harness();
  h.user({ type: 'STDIN', data: bytes('a') });
  h.user({ type: 'STDIN', data: bytes('b') });
  h.user({ type: 'CLOSE_STDIN' });
  h.user({ type: 'STDIN', data: bytes('ignored after close') });
  await h.settle();
  h.guest().sendBack({ type: 'CHANNEL_OPENED', offset: 0 });
  t.same(
    h.toChannel.map((c) => (c.type === 'STDIN' ? new TextDecoder().decode(c.data) : c.type)),
    ['UNBLOCK', 'a', 'b', 'CLOSE_STDIN'],
  );
});

t.test('a lost link reopens on the next link at the offset already received', async (t) => {
  const h = harness({ offset: 0 });
  await h.settle();
  h.guest().sendBack({ type: 'CHANNEL_OPENED', offset: 0 });
  h.guest().sendBack({ type: 'OUTPUT', stream: 'stdout', data: bytes('12345') });
  h.guest().sendBack({ type: 'OUTPUT', stream: 'stderr', data: bytes('67') });
  h.guest().sendBack({ type: 'CHANNEL_LOST', reason: 'link down' });
  await h.settle();
  t.same(h.opened[1], { linkId: 'L2', containerId: 'c1', offset: 7 });
  h.guest().sendBack({ type: 'CHANNEL_OPENED', offset: 7 });
  h.guest().sendBack({ type: 'OUTPUT', stream: 'stdout', data: bytes('89') });
  h.guest().sendBack({ type: 'EXIT', exitCode: 0 });
  await toPromise(h.actor);
  t.equal(text(h.toUser), '123456789');
  t.equal(h.actor.getSnapshot().context.reconnects, 1);
});

t.test('a window size set before opening is sent once the channel is open', async (t) => {
  const h = harness();
  h.user({ type: 'RESIZE', cols: 100, rows: 40 });
  await h.settle();
  h.guest().sendBack({ type: 'CHANNEL_OPENED', offset: 0 });
  t.same(h.toChannel.slice(0, 2), [{ type: 'UNBLOCK' }, { type: 'RESIZE', cols: 100, rows: 40 }]);
});

t.test('an open rejected for an exited container ends with its exit code', async (t) => {
  const h = harness();
  await h.settle();
  h.guest().sendBack({ type: 'CHANNEL_REJECTED', kind: 'exited', message: 'exited with code 42', exitCode: 42 });
  t.match(await toPromise(h.actor), { outcome: 'exited', exitCode: 42 });
});

t.test('an open rejected for an unknown ID fails with the guest message', async (t) => {
  const h = harness();
  await h.settle();
  h.guest().sendBack({ type: 'CHANNEL_REJECTED', kind: 'unknown-id', message: 'unknown container ID: c1' });
  t.match(await toPromise(h.actor), { outcome: 'failed', failure: 'unknown-id', error: 'unknown container ID: c1' });
});

t.test('no link before the deadline fails with the lookup error', async (t) => {
  const h = harness({ links: [] });
  t.match(await toPromise(h.actor), { outcome: 'failed', failure: 'link', error: /waited 1000 ms for a connection carrying container c1/ });
});

t.test('detach closes the channel and ends without an exit code', async (t) => {
  const h = harness();
  await h.settle();
  h.guest().sendBack({ type: 'CHANNEL_OPENED', offset: 0 });
  h.user({ type: 'DETACH' });
  t.match(await toPromise(h.actor), { outcome: 'detached', exitCode: undefined });
  t.equal(h.closed.length, 1, 'the channel is closed');
  t.notOk(h.toChannel.some((c) => c.type === 'CLOSE_STDIN' || c.type === 'SIGNAL'), 'the process is left alone');
});

t.test('a slow user pauses the channel and resumes it', async (t) => {
  const h = harness();
  await h.settle();
  h.guest().sendBack({ type: 'CHANNEL_OPENED', offset: 0 });
  h.user({ type: 'USER_BLOCKED' });
  h.user({ type: 'USER_READY' });
  t.same(h.toChannel.slice(-2), [{ type: 'PAUSE' }, { type: 'RESUME' }]);
});

t.test('a user still blocked when the link is lost gets the reopened channel paused', async (t) => {
  const h = harness({ offset: 0 });
  await h.settle();
  h.guest().sendBack({ type: 'CHANNEL_OPENED', offset: 0 });
  h.user({ type: 'USER_BLOCKED' });
  h.guest().sendBack({ type: 'CHANNEL_LOST', reason: 'link down' });
  await h.settle();
  const before = h.toChannel.length;
  h.guest().sendBack({ type: 'CHANNEL_OPENED', offset: 0 });
  t.same(h.toChannel[before], { type: 'PAUSE' }, 'paused before anything else');
  h.user({ type: 'USER_READY' });
  t.same(h.toChannel.at(-1), { type: 'RESUME' });
});
