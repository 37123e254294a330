/**
 * `GET /containers/{id}/logs`, served from the output log files the guest
 * writes (docs/PROTOCOL.md, "Output log files"), which for a sandboxed
 * containerVM lie in the appliance's state directory. Reading the files
 * rather than asking the guest means logs work with the link down and after
 * the containerVM is gone.
 *
 * Everything that can fail with an HTTP status (bad parameters, unknown
 * container, unreadable files) fails before the response starts; after
 * that the body is the records, framed as attach frames them, and with
 * `follow` the records appended later, until the container has exited and
 * the files hold nothing more. A Reply has no streamed body, so the body
 * goes straight onto the connection, as attach's does (a `hijack` reply).
 */
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { OutputStream } from '../../shared/outputLog.ts';
import { type LoggedRecord, readLoggedOutput, sessionLogDir, sessionLogDirs } from '../../shared/outputLogFiles.ts';
import { findContainer } from './containers.ts';
import type { ContainerDirectory, ContainerRecord } from './directory.ts';
import { ApiError, messageOf } from './errors.ts';
import type { ApiLog } from './log.ts';
import { frameHeader, MULTIPLEXED_STREAM, RAW_STREAM, STDERR, STDOUT } from './multiplex.ts';
import { boolParam } from './query.ts';
import type { Route } from './router.ts';

/** How often a follower looks for new records. */
const FOLLOW_POLL_MS = 100;

/** Where a container's guest writes its session logs. */
export type LogDirOf = (record: ContainerRecord) => string;

/** The layout tools/sandbox.ts gives a containerVM without a `logDir` of its own. */
export function logDirsUnder(stateDir: string): LogDirOf {
  return (record) => join(stateDir, 'containers', record.vm, 'logs');
}

export interface LogsOptions {
  stdout: boolean;
  stderr: boolean;
  follow: boolean;
  timestamps: boolean;
  /** µs since the epoch: records logged before it are left out. */
  sinceUs?: number;
  /** µs since the epoch: records logged after it are left out, and a follow ends once the clock passes it. */
  untilUs?: number;
  /** The last this many lines; absent: all. */
  tail?: number;
}

/** Docker's query parameters, with Docker's 400 when no stream is chosen. */
export function parseLogsQuery(query: URLSearchParams): LogsOptions {
  const stdout = boolParam(query, 'stdout');
  const stderr = boolParam(query, 'stderr');
  if (!stdout && !stderr) throw new ApiError(400, 'Bad parameters: you must choose at least one stream');
  const since = query.get('since');
  const until = query.get('until');
  const tail = parseTail(query.get('tail'));
  return {
    stdout,
    stderr,
    follow: boolParam(query, 'follow'),
    timestamps: boolParam(query, 'timestamps'),
    // Docker's zero values: since=0 selects everything anyway; until=0 means no bound.
    ...(since === null || since === '' ? {} : { sinceUs: parseTimeUs('since', since, 'up') }),
    ...(until === null || until === '' || until === '0' ? {} : { untilUs: parseTimeUs('until', until, 'down') }),
    ...(tail === undefined ? {} : { tail }),
  };
}

const UNIX_SECONDS = /^(\d+)(?:\.(\d+))?$/;
const RFC3339 = /^(\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * A `since`/`until` value, Unix seconds with any fraction (what the docker
 * CLI sends) or RFC 3339, in µs since the epoch. Records carry whole µs, so
 * a bound finer than that rounds inwards: `up` for a lower bound, `down`
 * for an upper one.
 */
export function parseTimeUs(name: string, raw: string, round: 'up' | 'down'): number {
  let wholeUs: number;
  let fraction: string;
  const unix = UNIX_SECONDS.exec(raw);
  const rfc = unix ? null : RFC3339.exec(raw);
  if (unix) {
    wholeUs = Number(unix[1]) * 1e6;
    fraction = unix[2] ?? '';
  } else if (rfc) {
    wholeUs = Date.parse(`${rfc[1]!.toUpperCase()}${rfc[3]!.toUpperCase()}`) * 1e3;
    fraction = rfc[2] ?? '';
  } else {
    throw new ApiError(400, `invalid value for parameter "${name}": ${JSON.stringify(raw)} is neither Unix seconds (1700000000.5) nor RFC 3339 (2023-11-14T22:13:20.5Z)`);
  }
  const fractionUs = Number(fraction.slice(0, 6).padEnd(6, '0'));
  const finer = /[1-9]/.test(fraction.slice(6)) && round === 'up' ? 1 : 0;
  const us = wholeUs + fractionUs + finer;
  if (!Number.isSafeInteger(us)) throw new ApiError(400, `invalid value for parameter "${name}": ${JSON.stringify(raw)} is out of range`);
  return us;
}

/** `all` (or nothing) is every line; a negative count too, as Docker reads it. */
export function parseTail(raw: string | null): number | undefined {
  if (raw === null || raw === '' || raw === 'all') return undefined;
  if (!/^[+-]?\d+$/.test(raw)) throw new ApiError(400, `invalid value for parameter "tail": ${JSON.stringify(raw)} is neither "all" nor a number of lines`);
  const lines = Number(raw);
  return lines < 0 ? undefined : lines;
}

/** A stretch of one stream's output, logged at `timeUs`. */
export interface LogChunk {
  stream: OutputStream;
  timeUs: number;
  data: Uint8Array;
}

/**
 * The chunks that hold the last `lines` lines. A line is a stream's bytes up
 * to and including a newline (or the stream's unfinished last bytes), and
 * may span chunks; lines count in the order they started, so two streams'
 * lines interleave as they were written.
 */
export function tailLines(chunks: readonly LogChunk[], lines: number): LogChunk[] {
  // Each chunk's line starts (where in it, which line); within a chunk lines only grow, so what is kept of it is a suffix.
  const starts: { at: number; line: number }[][] = [];
  const open: Partial<Record<OutputStream, number>> = {};
  let count = 0;
  for (const chunk of chunks) {
    const pieces: { at: number; line: number }[] = [];
    let at = 0;
    while (at < chunk.data.length) {
      const newline = chunk.data.indexOf(0x0a, at);
      pieces.push({ at, line: open[chunk.stream] ?? count++ });
      if (newline === -1) {
        open[chunk.stream] = pieces.at(-1)!.line;
        break;
      }
      delete open[chunk.stream];
      at = newline + 1;
    }
    starts.push(pieces);
  }
  const first = count - lines;
  const kept: LogChunk[] = [];
  chunks.forEach((chunk, i) => {
    const piece = starts[i]!.find(({ line }) => line >= first);
    if (piece) kept.push(piece.at === 0 ? chunk : { ...chunk, data: chunk.data.subarray(piece.at) });
  });
  return kept;
}

/** Docker's RFC3339NanoFixed, in UTC: always nine fraction digits. */
export function formatTimestamp(timeUs: number): string {
  const seconds = Math.floor(timeUs / 1e6);
  const us = timeUs - seconds * 1e6;
  return `${new Date(seconds * 1000).toISOString().slice(0, 19)}.${String(us).padStart(6, '0')}000Z`;
}

/**
 * Puts each line's timestamp (the time its first bytes were logged) and a
 * space before it, as `docker logs --timestamps` shows. Keeps, per stream,
 * whether the next byte starts a line, since lines span chunks.
 */
export class LineTimestamps {
  private readonly midLine = new Set<OutputStream>();

  frame(chunk: LogChunk): Buffer {
    const prefix = Buffer.from(`${formatTimestamp(chunk.timeUs)} `);
    const parts: Uint8Array[] = [];
    let start = 0;
    while (start < chunk.data.length) {
      const newline = chunk.data.indexOf(0x0a, start);
      const end = newline === -1 ? chunk.data.length : newline + 1;
      if (!this.midLine.has(chunk.stream)) parts.push(prefix);
      parts.push(chunk.data.subarray(start, end));
      if (newline === -1) this.midLine.add(chunk.stream);
      else this.midLine.delete(chunk.stream);
      start = end;
    }
    return Buffer.concat(parts);
  }
}

/** Whether the request wants a record: one of its streams, logged within since..until (both inclusive, as Docker's are). */
function selected(options: LogsOptions, record: LoggedRecord): boolean {
  return (
    options[record.stream] &&
    (options.sinceUs === undefined || record.timeUs >= options.sinceUs) &&
    (options.untilUs === undefined || record.timeUs <= options.untilUs)
  );
}

/**
 * A session's records from `from` on, and where the next read starts; none
 * when the guest has not made the directory (the session never wrote).
 */
function readRecords(dir: string, from: number): { records: LoggedRecord[]; next: number } {
  const records: LoggedRecord[] = [];
  let next = from;
  try {
    for (const record of readLoggedOutput(dir, { from })) {
      records.push(record);
      next = record.offset + record.data.length;
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  return { records, next };
}

export function logsRoute(directory: ContainerDirectory, logDirOf: LogDirOf, log: ApiLog): Route {
  return {
    method: 'GET',
    path: '/containers/{id}/logs',
    handler: ({ params, query }) => {
      const options = parseLogsQuery(query);
      const record = findContainer(directory, params.id!);
      const logDir = logDirOf(record);
      let earlier: LoggedRecord[];
      let current: { records: LoggedRecord[]; next: number };
      try {
        // Earlier runs' output comes first: Docker's logs, too, span a container's restarts.
        earlier = sessionLogDirs(logDir, record.id)
          .slice(0, -1)
          .flatMap((dir) => readRecords(dir, 0).records);
        current = readRecords(sessionLogDir(logDir, record.id), 0);
      } catch (error) {
        throw new Error(`cannot read the logs of container ${record.name} in ${logDir}: ${messageOf(error)}`);
      }
      const chosen = [...earlier, ...current.records].filter((r) => selected(options, r));
      const initial = options.tail === undefined ? chosen : tailLines(chosen, options.tail);
      return {
        kind: 'hijack',
        contentType: record.tty ? RAW_STREAM : MULTIPLEXED_STREAM,
        take: (socket) => {
          const write = encoder(record.tty, options.timestamps);
          for (const chunk of initial) socket.write(write(chunk));
          if (!options.follow) {
            socket.end();
            return;
          }
          follow({ socket, directory, record, options, dir: sessionLogDir(logDir, record.id), next: current.next, write, log });
        },
      };
    },
  };
}

/** Turns a chunk into body bytes: raw for a tty, else behind its stream's frame header. */
function encoder(tty: boolean, timestamps: boolean): (chunk: LogChunk) => Uint8Array {
  const stamps = timestamps ? new LineTimestamps() : undefined;
  return (chunk) => {
    const data = stamps ? stamps.frame(chunk) : chunk.data;
    return tty ? data : Buffer.concat([frameHeader(chunk.stream === 'stdout' ? STDOUT : STDERR, data.length), data]);
  };
}

/**
 * Polls the session's files for records after `next` until the container
 * has exited (or is gone) and a read after that found nothing more, or the
 * clock passed `until`; stops at once when the client goes away.
 */
function follow(args: {
  socket: Duplex;
  directory: ContainerDirectory;
  record: ContainerRecord;
  options: LogsOptions;
  dir: string;
  next: number;
  write: (chunk: LogChunk) => Uint8Array;
  log: ApiLog;
}): void {
  const { socket, directory, record, options, dir, write, log } = args;
  let next = args.next;
  let timer: NodeJS.Timeout | undefined;
  socket.once('close', () => clearTimeout(timer));
  const poll = (): void => {
    if (socket.destroyed) return;
    // Read the state before the files: output logged before the exit is then in this read.
    const now = directory.find(record.id);
    const ended = now === undefined || now.state === 'exited' || now.state === 'failed';
    const past = options.untilUs !== undefined && Date.now() * 1000 > options.untilUs;
    let read: { records: LoggedRecord[]; next: number };
    try {
      read = readRecords(dir, next);
    } catch (error) {
      // The response has started, so no status can say so: log it and cut the body short.
      log('error', `following the logs of container ${record.name} in ${dir}: ${messageOf(error)}`);
      socket.destroy();
      return;
    }
    next = read.next;
    for (const chunk of read.records) if (selected(options, chunk)) socket.write(write(chunk));
    if (past || (ended && read.records.length === 0)) {
      socket.end();
      return;
    }
    timer = setTimeout(poll, FOLLOW_POLL_MS);
  };
  poll();
}
