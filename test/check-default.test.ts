import t from 'tap';
import { explore } from '../tools/check/explore.ts';
import { scenarios } from '../tools/check/scenario.ts';

// The scenarios CI runs: the real machines, every interleaving, every property.

for (const name of ['default', 'stall', 'impostor', 'stop', 'two-vms']) {
  t.test(`every property holds for the real machines in the ${name} scenario`, async (t) => {
    const report = explore(scenarios[name]!);
    t.equal(report.truncated, false, 'the whole state space was explored');
    t.same(
      report.properties.filter((p) => !p.held || !p.checked).map((p) => `${p.name}: ${p.message ?? 'unproven'}`),
      [],
    );
    t.notOk(report.counterexample, report.counterexample?.text ?? 'no counterexample');
    t.comment(`${report.states} states, ${report.transitions} transitions, depth ${report.depth}, ${report.seconds.toFixed(1)} s`);
  });
}
