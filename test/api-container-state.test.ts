import t from 'tap';
import { humanDuration, statusText } from '../appliance/api/containerState.ts';
import type { ContainerRecord } from '../appliance/api/directory.ts';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

t.test("durations read as go-units' HumanDuration writes them", async (t) => {
  for (const [milliseconds, text] of [
    [0, 'Less than a second'],
    [999, 'Less than a second'],
    [SECOND, '1 second'],
    [59 * SECOND + 999, '59 seconds'],
    [MINUTE, 'About a minute'],
    [2 * MINUTE - 1, 'About a minute'],
    [2 * MINUTE, '2 minutes'],
    [59 * MINUTE, '59 minutes'],
    [60 * MINUTE, 'About an hour'],
    [89 * MINUTE, 'About an hour'],
    [90 * MINUTE, '2 hours'],
    [47 * HOUR, '47 hours'],
    [48 * HOUR, '2 days'],
    [13 * DAY, '13 days'],
    [14 * DAY, '2 weeks'],
    [59 * DAY, '8 weeks'],
    [60 * DAY, '2 months'],
    [729 * DAY, '24 months'],
    [730 * DAY, '2 years'],
  ] as const) {
    t.equal(humanDuration(milliseconds), text, `${milliseconds} ms`);
  }
});

const START = Date.parse('2025-06-01T12:00:00Z');

function container(fields: Partial<ContainerRecord>): ContainerRecord {
  return {
    id: 'f'.repeat(64),
    name: 'c',
    cmd: ['cat'],
    tty: false,
    openStdin: false,
    primary: true,
    state: 'running',
    created: new Date(START - MINUTE).toISOString(),
    startedAt: new Date(START).toISOString(),
    vm: 'vm',
    link: { up: true, detail: 'connected' },
    ...fields,
  };
}

t.test('the status column reads like Docker, with what Docker has no word for in parentheses', async (t) => {
  const now = START + 3 * MINUTE;
  t.equal(statusText(container({}), now), 'Up 3 minutes');
  t.equal(statusText(container({ state: 'blocked', startedAt: undefined }), now), 'Up 4 minutes (waiting for attach)', 'up since the container was created');
  t.equal(statusText(container({ link: { up: false, detail: 'link down since 12:01 (3 reconnects)' } }), now), 'Up 3 minutes (link down)');
  t.equal(statusText(container({ state: 'exited', exitCode: 3, finishedAt: new Date(now - 2 * SECOND).toISOString() }), now), 'Exited (3) 2 seconds ago');
  t.equal(statusText(container({ state: 'exited', exitCode: 3 }), now), 'Exited (3)', 'no time when the finish is unknown');
  t.equal(statusText(container({ state: 'failed', error: 'no such file', finishedAt: new Date(now).toISOString() }), now), 'Exited (-1) Less than a second ago', 'a failure without an exit code does not read as success');
  t.equal(statusText(container({ state: 'created', startedAt: undefined }), now), 'Created');
});
