import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { CheckReport } from '../tools/check/report.ts';

// `tether check` as a user runs it: the bundled CLI.

const tether = (args: string[]) => spawnSync(process.execPath, ['bin/tether.js', ...args], { encoding: 'utf8', timeout: 240_000 });

t.test('tether check explores a scenario, prints each property and keeps the report', async (t) => {
  const state = mkdtempSync(join(tmpdir(), 'tether-check-'));
  const run = tether(['check', '--scenario', 'attach', '--state', state]);
  t.equal(run.status, 0, run.stderr);
  t.match(run.stdout, /^\d+ states, \d+ transitions, depth \d+/m);
  t.match(run.stdout, /held {5}routing: /);
  t.notMatch(run.stdout, /VIOLATED|unproven/);
  const report = JSON.parse(readFileSync(join(state, 'last-check.json'), 'utf8')) as CheckReport;
  t.equal(report.scenario, 'attach');
  t.ok(report.states > 0 && report.properties.every((p) => p.held && p.checked), 'every property held and was proven');
});

t.test('tether check lists its scenarios and names an unknown one', async (t) => {
  const list = tether(['check', '--list']);
  t.equal(list.status, 0);
  t.match(list.stdout, /^default +/m);
  const unknown = tether(['check', '--scenario', 'nope']);
  t.not(unknown.status, 0);
  t.match(unknown.stderr, /no scenario named "nope" \(there are: default, attach, faults, late, reconnect, stall, two-vms, stop, impostor, large\)/);
  const bad = tether(['check', '--max-states', 'lots']);
  t.match(bad.stderr, /--max-states must be a positive integer, got "lots"/);
});

t.test('a violated property exits 1: the bundled CLI on a mutant; a mutant it does not know exits 2, naming the ones there are', async (t) => {
  const state = mkdtempSync(join(tmpdir(), 'tether-check-'));
  const run = tether(['check', '--mutant', 'forgetful-map', '--state', state]);
  t.equal(run.status, 1, run.stderr);
  t.match(run.stdout, /^mutant forgetful-map: a connection map that forgets its waiters when a link comes up; it must break link-found$/m);
  t.match(run.stdout, /VIOLATED link-found: /);
  t.match(run.stdout, /^shortest counterexample \(\d+ steps\):$/m);
  const unknown = tether(['check', '--mutant', 'nope']);
  t.equal(unknown.status, 2);
  t.match(unknown.stderr, /no mutant named "nope" \(there are: map-trusts-reports, inventory-trusts-reports, /);
  const list = tether(['check', '--list']);
  t.match(list.stdout, /^mutant exit-while-behind: a guest that sends the exit status to a channel still catching up \(breaks exit-status\)$/m);
});
