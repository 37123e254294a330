/**
 * The output log's files (docs/PROTOCOL.md, "Output log files"): where a
 * session's output lies in the guest's log directory, how its records are
 * framed, and a reader for them. The guest's `outputLog` actor writes them
 * (actors/outputLog.ts); anything that can read the directory reads them with
 * readLoggedOutput, the guest replaying an attach as well as `docker logs`
 * reading a stopped VM's disk.
 */
import { existsSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { OutputStream } from './outputLog.ts';

export const FILE_MAGIC = Buffer.from('TETHRLOG', 'latin1');
export const FORMAT_VERSION = 1;
export const FILE_HEADER_BYTES = 32;
export const RECORD_HEADER_BYTES = 16;

const SESSION_ID = /^[A-Za-z0-9_.-]{1,128}$/;
const SEGMENT = /^[0-9a-f]{16}\.seg$/;
const STREAM_CODES: Record<OutputStream, number> = { stdout: 1, stderr: 2 };
const STREAMS: (OutputStream | undefined)[] = [undefined, 'stdout', 'stderr'];
const TWO_32 = 2 ** 32;

/** One record as read back: `data` was written to `stream` at `timeUs`, and data[0] has absolute offset `offset`. */
export interface LoggedRecord {
  offset: number;
  /** Wall-clock time the bytes were logged, in microseconds since the Unix epoch. */
  timeUs: number;
  stream: OutputStream;
  data: Uint8Array;
}

/** This boot's files, or those the boot before it left ("previous"). */
export type Generation = 'current' | 'previous';

/**
 * The directory holding a session's segment files. The suffix keeps every
 * session ID a usable name ("." and ".." included) and tells the generations
 * apart: no ID's current directory ends in ".log.prev".
 */
export function sessionLogDir(logDir: string, sessionId: string, generation: Generation = 'current'): string {
  if (!SESSION_ID.test(sessionId)) {
    throw new RangeError(`no output log directory for session ID ${JSON.stringify(sessionId)}: expected 1-128 characters of [A-Za-z0-9_.-]`);
  }
  return join(logDir, `${sessionId}.log${generation === 'previous' ? '.prev' : ''}`);
}

/** `<id>.log.run-<n>`: an earlier run's files, which no current (`.log`) or previous (`.log.prev`) directory name matches. */
const RUN_SUFFIX = /^\.log\.run-(\d+)$/;

/**
 * The directories holding every run of a session that the log directory
 * keeps, oldest first: the runs archived by archiveRuns, then the previous
 * generation and the current one. Any of them may be missing.
 */
export function sessionLogDirs(logDir: string, sessionId: string): string[] {
  const current = sessionLogDir(logDir, sessionId);
  const runs = existsSync(logDir)
    ? readdirSync(logDir)
        .filter((name) => name.startsWith(sessionId) && RUN_SUFFIX.test(name.slice(sessionId.length)))
        .map((name) => ({ name, run: Number(RUN_SUFFIX.exec(name.slice(sessionId.length))![1]) }))
        .sort((a, b) => a.run - b.run)
        .map(({ name }) => join(logDir, name))
    : [];
  return [...runs, sessionLogDir(logDir, sessionId, 'previous'), current];
}

/**
 * Keeps the files of a session's earlier runs for good, before its guest
 * boots again: the guest itself keeps only one previous generation (it
 * replaces the one before, so a guest rebooting in a loop cannot fill its
 * disk), but a container restarted by `docker start` keeps the logs of every
 * run, as Docker's do. Each run stays bounded as the guest bounds it.
 */
export function archiveRuns(logDir: string, sessionId: string): void {
  const next = sessionLogDirs(logDir, sessionId).length - 1;
  let run = next;
  for (const generation of ['previous', 'current'] as const) {
    const dir = sessionLogDir(logDir, sessionId, generation);
    if (existsSync(dir)) renameSync(dir, join(logDir, `${sessionId}.log.run-${run++}`));
  }
}

/** A segment's file name: its first byte's absolute offset, so names sort in log order. */
export function segmentName(firstOffset: number): string {
  return `${firstOffset.toString(16).padStart(16, '0')}.seg`;
}

export function encodeFileHeader(firstOffset: number, timeUs: number): Buffer {
  const header = Buffer.alloc(FILE_HEADER_BYTES);
  FILE_MAGIC.copy(header, 0);
  header.writeUInt32LE(FORMAT_VERSION, 8);
  writeU64(header, 16, firstOffset);
  writeU64(header, 24, timeUs);
  return header;
}

/** Fills `into` (RECORD_HEADER_BYTES long, reused by the writer) with a record's header. */
export function encodeRecordHeader(into: Buffer, stream: OutputStream, length: number, timeUs: number): void {
  writeU64(into, 0, timeUs);
  into.writeUInt32LE(length, 8);
  into.writeUInt32LE(STREAM_CODES[stream], 12);
}

/**
 * The records of the session directory `dir`, oldest first, from absolute
 * offset `from` (a record holding it is cut to start there; an offset older
 * than the files hold starts at their oldest byte) and, when `sinceUs` is
 * given, only those logged at or after it (the wall clock may step back, so
 * each record is tested). Reads one segment at a time; `data` are views of
 * its bytes. A record cut short by a crash ends its file. Throws when `dir`
 * cannot be listed (a session that never wrote has none) or holds a file of
 * another format.
 */
export function* readLoggedOutput(dir: string, options: { from?: number; sinceUs?: number } = {}): Generator<LoggedRecord> {
  const from = options.from ?? 0;
  const sinceUs = options.sinceUs ?? Number.NEGATIVE_INFINITY;
  const names = readdirSync(dir).filter((name) => SEGMENT.test(name)).sort();
  // Segments wholly before `from` are not read: the next one's name says where they end.
  let first = 0;
  while (first + 1 < names.length && parseInt(names[first + 1]!.slice(0, 16), 16) <= from) first++;
  for (const name of names.slice(first)) {
    const path = join(dir, name);
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch (err) {
      // Rotated away by the writer since the listing: it held only older bytes.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    yield* segmentRecords(bytes, path, from, sinceUs);
  }
}

function* segmentRecords(bytes: Buffer, path: string, from: number, sinceUs: number): Generator<LoggedRecord> {
  // Shorter than a header: created, and the writer stopped (or crashed) before the header was down.
  if (bytes.length < FILE_HEADER_BYTES) return;
  if (!bytes.subarray(0, FILE_MAGIC.length).equals(FILE_MAGIC)) throw new Error(`cannot read output log file ${path}: not a tether output log (bad magic)`);
  const version = bytes.readUInt32LE(8);
  if (version !== FORMAT_VERSION) throw new Error(`cannot read output log file ${path}: format version ${version}, this reader knows ${FORMAT_VERSION}`);
  let offset = readU64(bytes, 16);
  let pos = FILE_HEADER_BYTES;
  while (pos + RECORD_HEADER_BYTES <= bytes.length) {
    const timeUs = readU64(bytes, pos);
    const length = bytes.readUInt32LE(pos + 8);
    const stream = STREAMS[bytes.readUInt32LE(pos + 12)];
    const end = pos + RECORD_HEADER_BYTES + length;
    // Cut short, or not a record at all (a crash can leave zeros where the last write should be): the file ends here.
    if (stream === undefined || end > bytes.length) return;
    if (offset + length > from && timeUs >= sinceUs) {
      const skip = Math.max(0, from - offset);
      yield { offset: offset + skip, timeUs, stream, data: bytes.subarray(pos + RECORD_HEADER_BYTES + skip, end) };
    }
    offset += length;
    pos = end;
  }
}

// Offsets and times stay below 2^53, so two 32-bit halves carry them exactly without BigInt.
function writeU64(buffer: Buffer, at: number, value: number): void {
  buffer.writeUInt32LE(value % TWO_32, at);
  buffer.writeUInt32LE(Math.floor(value / TWO_32), at + 4);
}

function readU64(buffer: Buffer, at: number): number {
  return buffer.readUInt32LE(at) + buffer.readUInt32LE(at + 4) * TWO_32;
}
