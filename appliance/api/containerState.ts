/**
 * How tether's container states read in Docker's vocabulary. Docker has no
 * "blocked" (a process held before launch until someone attaches, so no early
 * output is lost) and no "failed" (the guest could not launch it):
 * - blocked reads as running: the containerVM is up, and `docker attach`,
 *   which is what releases the process, refuses containers that are not
 *   running;
 * - failed reads as exited, with the launch error in State.Error.
 */
import type { ContainerRecord } from './directory.ts';

/** Every status Docker knows, so a `status` filter accepts exactly what Docker's does. */
export const DOCKER_STATUSES = ['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'] as const;

/** The ones a tether container can be in. */
export type DockerStatus = 'created' | 'running' | 'exited';

const STATUS_OF: Record<ContainerRecord['state'], DockerStatus> = {
  created: 'created',
  blocked: 'running',
  running: 'running',
  exited: 'exited',
  failed: 'exited',
};

export function dockerStatus(record: ContainerRecord): DockerStatus {
  return STATUS_OF[record.state];
}

/** Whether Docker would list it: a containerVM's container is its primary session; the others are its execs, which Docker never lists. */
export function isListed(record: ContainerRecord): boolean {
  return record.primary;
}

export function isRunning(record: ContainerRecord): boolean {
  return dockerStatus(record) === 'running';
}

/**
 * A container that ended without a known code reports -1 (no exit status,
 * as Go's ProcessState.ExitCode has it) rather than 0, which would read as
 * success; one that has not ended reports Docker's zero value.
 */
export function exitCodeOf(record: ContainerRecord): number {
  return record.exitCode ?? (dockerStatus(record) === 'exited' ? -1 : 0);
}

/** The `Status` column of `docker ps`: "Up 3 minutes", "Exited (3) 2 seconds ago". */
export function statusText(record: ContainerRecord, now: number): string {
  switch (dockerStatus(record)) {
    case 'running': {
      const since = Date.parse(record.startedAt ?? record.created);
      const notes = [
        ...(record.state === 'blocked' ? ['waiting for attach'] : []),
        ...(record.link.up ? [] : ['link down']),
      ];
      return `Up ${humanDuration(now - since)}${notes.map((note) => ` (${note})`).join('')}`;
    }
    case 'exited': {
      const code = `Exited (${exitCodeOf(record)})`;
      return record.finishedAt ? `${code} ${humanDuration(now - Date.parse(record.finishedAt))} ago` : code;
    }
    case 'created':
      return 'Created';
  }
}

/** go-units HumanDuration, which Docker uses for every "Up ..." and "... ago". */
export function humanDuration(milliseconds: number): string {
  const seconds = Math.trunc(milliseconds / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(milliseconds / 3_600_000);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.trunc(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24 / 30)} months`;
  return `${Math.trunc(milliseconds / 3_600_000 / 24 / 365)} years`;
}
