import t from 'tap';
import { measurePid1, missingPrerequisites, PEERS, TETHER } from '../bench/pid1.ts';

// The benchmark needs namespaces and the real peers; without them say so instead of passing silently.
const skip = missingPrerequisites() ?? false;
if (skip) console.error(`# SKIP bench-pid1: ${skip}`);

t.test('the PID 1 benchmark gives every init a figure, or the reason for none, on a tiny storm', { skip }, async (t) => {
  const results = await measurePid1({ orphans: 200, rounds: 1, stallMs: 1000, signalTimeoutMs: 2000 });
  const peers = Object.keys(PEERS);
  t.same(results.inits, [TETHER, ...peers], 'tether, then each peer');

  for (const init of results.inits) {
    t.equal(results.startup.values.get(init)?.length, 1, `${init}: a startup time`);
    t.ok(results.peakRss.values.get(init)?.every((mib) => mib > 0), `${init}: a peak RSS`);
    // tether may not reap orphans or answer TERM yet: then the round says why instead.
    for (const [name, figure] of [['storm', results.storm], ['signal', results.signal]] as const) {
      const given = (figure.values.get(init)?.length ?? 0) + (figure.misses.get(init)?.length ?? 0);
      t.equal(given, 1, `${init}: a ${name} figure or the reason for none`);
    }
  }
  for (const peer of peers) {
    t.ok(results.storm.values.get(peer)?.every((ms) => ms > 0), `${peer} drains the storm`);
    t.ok(results.drain.values.get(peer)?.every((ms) => ms >= 0), `${peer}: a drain time`);
    t.ok(results.signal.values.get(peer)?.every((ms) => ms > 0), `${peer} forwards TERM to the container process`);
  }
  t.equal(results.startup.values.get('node -e 0')?.length, 1, 'node -e 0: a startup time for scale');
});
