import t, { type Test } from 'tap';
import { requestGlobal } from '../actors/ssh/extension.ts';
import { parseAddress } from '../appliance/address.ts';
import type { LiveState } from '../appliance/api/liveFeed.ts';
import { decodeContainerIds, encodeActorStates, encodeNoPayload, REQ_ACTOR_STATES, REQ_CONTAINER_IDS, REQ_INSPECT } from '../shared/wire.ts';
import { followFeed } from '../tools/viz/feed.ts';
import { collect, eventually, startWorld, type World } from './support/world.ts';

// The guests' actors and the attaches' container channels in the appliance's
// inspect feed, end to end: a real appliance, a sandboxed guest over a real
// pty, and the feed read the way `tether viz --serve` reads it.

const want = { stdin: true, stdout: true, stderr: true, stream: true, logs: false };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Longer than the guest's report interval and a round trip over the link, many times over. */
const QUIET_MS = 500;

/** Reads the appliance's feed until the test ends or `close()`; every state in arrival order. */
function readFeed(t: Test, world: World): { states: LiveState[]; close(): void } {
  const states: LiveState[] = [];
  const feed = followFeed(parseAddress(world.appliance.api, 'the appliance'), {
    state: (state) => states.push(state),
    reachability: () => {},
    warn: (message) => t.fail(message),
  });
  t.teardown(() => feed.close());
  return { states, close: () => feed.close() };
}

const find = (states: LiveState[], actor: string, test: (s: LiveState) => boolean = () => true) => states.find((s) => s.actor === actor && test(s));

/** Attaches to a run-block `cat`, which unblocks it, and ends it by closing its stdin: the guest's states change all the way. */
async function runOnce(world: World, id: string): Promise<void> {
  const a = await world.appliance.directory.attach(id, want);
  const output = collect(a.stdout);
  a.stdin!.end('x\n');
  await output;
  await a.done;
}

t.test('a guest sends no actor states while nobody reads the inspect feed, and stops again when the last reader goes', async (t) => {
  const world = await startWorld(t);
  const reports = t.capture(world.appliance.feed, 'report', world.appliance.feed.report);
  // Execs of a container that stays up (they would end with its primary).
  const sessions = {
    quiet: { cmd: ['sleep', '1000'] },
    ...Object.fromEntries(['one', 'two', 'three'].map((id) => [id, { cmd: ['cat'], openStdin: true, runBlock: true }])),
  };
  await world.sandbox({ id: 'quiet', name: 'quiet', hostname: 'quiet', sessions });
  await world.container('three');

  await runOnce(world, 'one');
  await sleep(QUIET_MS);
  t.equal(reports.calls.length, 0, 'a link up, sessions started, run and exited: not one report');

  const reader = readFeed(t, world);
  await eventually(() => find(reader.states, 'guest:quiet/session:one', (s) => s.status === 'done'), "the guest's exited session in the feed");
  t.ok(reports.calls.length > 0, `reports flow while someone reads (${reports.calls.length} so far)`);

  reader.close();
  await sleep(QUIET_MS);
  const before = reports.calls.length;
  await runOnce(world, 'two');
  await sleep(QUIET_MS);
  t.equal(reports.calls.length, before, 'after the reader left, another run is not reported');
});

t.test("the feed shows a guest's actors and each attach's container channel, and reports them stopped when they end", async (t) => {
  const world = await startWorld(t);
  const reader = readFeed(t, world);
  const sandbox = await world.sandbox({ id: 'shown', name: 'shown', hostname: 'shown', sessions: { shown: { cmd: ['cat'], openStdin: true, runBlock: true } } });
  await world.container('shown');

  const blocked = await eventually(() => find(reader.states, 'guest:shown/session:shown', (s) => s.state === 'blocked'), 'the blocked session in the feed');
  t.match(blocked, { system: 'guest:shown', machine: 'processSession', status: 'active' }, "the guest's process session, under its containerVM's name");
  t.match(find(reader.states, 'guest:shown/link/ssh'), { machine: 'guestSession', state: 'serving' }, "the guest's SSH session");
  t.match(find(reader.states, 'guest:shown'), { machine: 'guest' }, "the guest's root");

  const a = await world.appliance.directory.attach('shown', want);
  await eventually(() => find(reader.states, 'guest:shown/session:shown', (s) => s.state === 'running'), 'the session running once the attach unblocked it');
  const channel = await eventually(() => find(reader.states, 'appliance/attach/1', (s) => JSON.stringify(s.state) === '{"connected":"streaming"}'), 'the streaming attach');
  t.match(channel, { system: 'appliance', machine: 'containerChannel', status: 'active' }, "the attach's container channel");

  const output = collect(a.stdout);
  a.stdin!.end();
  await output;
  await a.done;
  await eventually(() => find(reader.states, 'appliance/attach/1', (s) => s.status === 'stopped'), 'the ended attach reported stopped');
  await eventually(() => find(reader.states, 'guest:shown/session:shown', (s) => s.state === 'exited'), 'the session exited');

  const seen = reader.states.length;
  sandbox.line!.bridge.drop();
  await eventually(() => find(reader.states.slice(seen), 'guest:shown/link/ssh', (s) => s.status === 'stopped'), "the guest's SSH session stopped with its link");
  await eventually(() => find(reader.states.slice(seen), 'guest:shown/link/ssh', (s) => s.status === 'active' && s.state === 'serving'), 'and serving again on the next link');
});

t.test('a malformed inspect request, or actor states sent to the guest, is refused and the guest goes on serving', async (t) => {
  const world = await startWorld(t);
  await world.sandbox({ id: 'firm', name: 'firm', hostname: 'firm', sessions: { firm: { cmd: ['cat'], openStdin: true } } });
  await world.container('firm');
  const client = world.appliance.actor.registry.get('link1')!;
  t.equal(await requestGlobal(client, REQ_INSPECT, Buffer.from([1, 2])), null, 'inspect@tether with a trailing byte');
  t.equal(await requestGlobal(client, REQ_INSPECT, Buffer.alloc(0)), null, 'inspect@tether without its boolean');
  t.equal(await requestGlobal(client, REQ_ACTOR_STATES, encodeActorStates([])), null, 'actor-states@tether, which only a guest sends');
  const ids = await requestGlobal(client, REQ_CONTAINER_IDS, encodeNoPayload());
  t.same(decodeContainerIds(ids!), ['firm'], 'the same SSH session still answers');
});
