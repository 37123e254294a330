import t from 'tap';
import { createActor, createMachine } from 'xstate';
import { LiveFeed, type LiveState } from '../appliance/api/liveFeed.ts';
import type { ActorState } from '../shared/wire.ts';

// What the appliance's inspect feed streams, and when it costs anything: it
// watches its actor systems and asks its guests to report only while someone
// listens.

const line = (s: LiveState) => `${s.actor} ${s.machine} ${JSON.stringify(s.state)} ${s.status}${s.event ? ` after ${s.event}` : ''}`;
const listen = (feed: LiveFeed) => {
  const seen: string[] = [];
  return { seen, stop: feed.subscribe((s) => seen.push(line(s))) };
};
const ssh = (state: string, status: ActorState['status'] = 'active'): ActorState => ({ path: ['link', 'ssh'], machine: 'guestSession', state, status, event: 'E' });

t.test('a guest is asked to report only while someone listens', async (t) => {
  const feed = new LiveFeed();
  const asked: boolean[] = [];
  feed.linkUp('link1', 'web', (on) => asked.push(on));
  t.same(asked, [], 'nobody listens: nothing asked');
  const first = listen(feed);
  const second = listen(feed);
  t.same(asked, [true], 'asked once for the first listener');
  first.stop();
  t.same(asked, [true], 'one listener left');
  second.stop();
  t.same(asked, [true, false], 'told to stop when the last one left');
  feed.report('link1', [ssh('serving')]);
  const third = listen(feed);
  t.same(third.seen, [], 'a report that crossed the stop is dropped, not kept');
  t.same(asked, [true, false, true], 'asked again for the next listener');
  feed.linkDown('link1');
  t.same(asked, [true, false, true], 'a link that went down is asked nothing more');
});

t.test("a guest's actors are named after its containerVM, sent once per change of value or status, and stopped when its link goes down", async (t) => {
  const feed = new LiveFeed();
  feed.linkUp('link1', 'web', () => {});
  const { seen } = listen(feed);
  feed.report('link1', [ssh('authenticating'), { path: [], machine: 'guest', state: {}, status: 'active' }]);
  feed.report('link1', [ssh('authenticating')]);
  feed.report('link1', [ssh('serving')]);
  const late = listen(feed);
  feed.linkDown('link1');
  t.same(seen, [
    'guest:web/link/ssh guestSession "authenticating" active after E',
    'guest:web guest {} active',
    'guest:web/link/ssh guestSession "serving" active after E',
    'guest:web/link/ssh guestSession "serving" stopped',
    'guest:web guest {} stopped',
  ], 'the second authenticating is no change');
  t.same(late.seen.slice(0, 2), ['guest:web/link/ssh guestSession "serving" active', 'guest:web guest {} active'], 'a later listener first gets the current states, without events');
  t.equal(late.seen.length, 4, 'and then the same changes');
});

t.test("a guest's next link takes its actors over: the previous link's end does not take them back", async (t) => {
  const feed = new LiveFeed();
  const { seen } = listen(feed);
  feed.linkUp('link1', 'web', () => {});
  feed.report('link1', [ssh('serving'), { path: ['link', 'handshake'], machine: 'handshake', state: 'done', status: 'done' }]);
  // The guest reconnected before the appliance noticed its old link was gone.
  feed.linkUp('link2', 'web', () => {});
  feed.report('link2', [ssh('serving')]);
  feed.linkDown('link1');
  t.same(seen, [
    'guest:web/link/ssh guestSession "serving" active after E',
    'guest:web/link/handshake handshake "done" done',
    'guest:web/link/handshake handshake "done" stopped',
  ], 'only what link2 has not reported is stopped');
});

t.test('a local actor system is watched only while someone listens, and is reported stopped when removed', async (t) => {
  const machine = createMachine({ id: 'toggle', initial: 'off', states: { off: { on: { FLIP: 'on' } }, on: { on: { FLIP: 'off' } } } });
  const actor = createActor(machine).start();
  const feed = new LiveFeed();
  const remove = feed.addSystem('appliance', 'appliance/attach/1', actor);
  actor.send({ type: 'FLIP' });
  const first = listen(feed);
  actor.send({ type: 'FLIP' });
  first.stop();
  actor.send({ type: 'FLIP' });
  const second = listen(feed);
  remove();
  actor.send({ type: 'FLIP' });
  t.same(first.seen, ['appliance/attach/1 toggle "on" active', 'appliance/attach/1 toggle "off" active after FLIP'], 'as it was when the first listener came, then the change');
  t.same(second.seen, ['appliance/attach/1 toggle "on" active', 'appliance/attach/1 toggle "on" stopped'], 'unwatched in between: watched afresh, then stopped on removal, and nothing after');
});
