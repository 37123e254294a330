import t from 'tap';
import { explore } from '../tools/check/explore.ts';
import { mutants } from '../tools/check/mutants.ts';

// Each mutant of tools/check/mutants.ts, in its scenario: the real machines
// hold there, and the checker finds the mutant, naming the broken property
// with a counterexample trace.

for (const mutant of mutants) {
  t.test(`the real machines hold in the "${mutant.scenario.name}" scenario`, async (t) => {
    const report = explore(mutant.scenario);
    t.equal(report.truncated, false, 'the whole state space was explored');
    t.same(
      report.properties.filter((p) => !p.held).map((p) => `${p.name}: ${p.message}`),
      [],
      'every property held',
    );
    t.notOk(report.counterexample, report.counterexample?.text ?? 'no counterexample');
  });

  t.test(`the checker finds ${mutant.name}`, async (t) => {
    const report = explore(mutant.scenario, { overrides: mutant.overrides });
    const broken = report.properties.filter((p) => !p.held);
    t.same(
      broken.map((p) => p.name),
      [mutant.breaks],
      `it reports ${mutant.breaks} broken`,
    );
    const trace = report.counterexample;
    if (!trace) return t.fail('no counterexample');
    t.equal(trace.property, mutant.breaks, 'the counterexample names the broken property');
    t.match(trace.text.split('\n').pop(), new RegExp(`^violated: ${mutant.breaks}: `), 'its text ends with the violation');
    t.equal(trace.text.split('\n').length, trace.steps.length + 1, 'one line per step');
    t.match(trace.mermaid, /^sequenceDiagram\n/, 'and it has Mermaid source');
  });
}
