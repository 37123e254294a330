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
  }
  // Every init, tether included, must drain the storm and pass TERM on: one figure each, no miss.
  for (const init of results.inits) {
    for (const [name, figure] of [['storm', results.storm], ['drain', results.drain], ['signal', results.signal]] as const) {
      const values = figure.values.get(init) ?? [];
      t.equal(values.length, 1, `${init}: a ${name} figure (misses: ${JSON.stringify(figure.misses.get(init) ?? [])})`);
      t.ok(values.every((ms) => ms >= 0), `${init}: the ${name} figure is a time`);
    }
  }
  t.equal(results.startup.values.get('node -e 0')?.length, 1, 'node -e 0: a startup time for scale');
});
