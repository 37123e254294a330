import { closeSync, existsSync, mkdirSync, openSync, renameSync, rmSync, unlinkSync, writeSync, writevSync } from 'node:fs';
import { join } from 'node:path';
import { fromCallback, type AnyActorRef } from 'xstate';
import type { OutputLogCommand, OutputLogEvent, SshServerCommand } from '../machines/guest.ts';
import type { Log } from '../shared/log.ts';
import { OutputLog, type OutputStream } from '../shared/outputLog.ts';
import {
  encodeFileHeader,
  encodeRecordHeader,
  readLoggedOutput,
  RECORD_HEADER_BYTES,
  segmentName,
  sessionLogDir,
} from '../shared/outputLogFiles.ts';

export interface OutputLogOptions {
  /** The guest's log directory (config `logDir`), created when missing. */
  dir: string;
  /** Bytes of each session's output to keep (config `outputLogBytes`), counted as the guest machine's grow() counts them. */
  capacity: number;
  /** Where a log directory that cannot be used is reported. */
  log?: Log;
  /**
   * Bytes of recent output also kept in memory (default 1 MiB): a channel
   * resuming after a lost link asks for bytes just behind the end, and gets
   * them without a file read.
   */
  tailBytes?: number;
  /** The wall clock in microseconds since the Unix epoch; tests pass their own. */
  now?: () => number;
}

/** A session's files hold at most an eighth of the capacity (and one record) beyond it: older segments go whole. */
const SEGMENTS_PER_CAPACITY = 8;

/**
 * The guest's output logs, one per session: the guest machine decides what is
 * appended and what a channel is replayed, and keeps the logs' extents; this
 * actor keeps the bytes, as framed, timestamped records in files under `dir`
 * (docs/PROTOCOL.md, "Output log files"; read them with
 * shared/outputLogFiles.ts). A replay piece goes straight to the SSH server
 * (registered as `sshServer`) as the channel's output, and REPLAYED tells the
 * guest machine where it ended: every append is written before the next
 * command is taken, so a replay sees all of them.
 *
 * A session whose files cannot be written goes on in memory, keeping
 * `capacity` bytes as the machine expects; the guest never fails for its logs.
 *
 * @example
 * createOutputLogActor({ dir: config.logDir, capacity: config.outputLogBytes, log: log.child('outputLog') })
 */
export function createOutputLogActor({ dir, capacity, log, tailBytes = 1024 * 1024, now = () => Date.now() * 1000 }: OutputLogOptions) {
  if (!Number.isSafeInteger(capacity) || capacity <= 0) throw new RangeError(`output log capacity must be a positive integer, got ${capacity}`);
  const segmentBytes = Math.ceil(capacity / SEGMENTS_PER_CAPACITY);
  return fromCallback<OutputLogCommand>(({ receive, sendBack, system }) => {
    const sessions = new Map<string, SessionOutput>();
    // Once for each kind of failure: a full or read-only disk fails every session alike.
    const reported = new Set<string>();
    const report = (message: string, err: unknown, fields: Record<string, unknown>) => {
      const code = (err as NodeJS.ErrnoException).code ?? 'other';
      log?.(reported.has(code) ? 'debug' : 'warn', `${message}: ${(err as Error).message}`, fields);
      reported.add(code);
    };
    let dirUsable = true;
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      dirUsable = false;
      report(`cannot create the output log directory ${dir}; keeping output in memory`, err, { dir });
    }

    const open = (sessionId: string): SessionOutput => {
      if (!dirUsable) return { tail: new OutputLog(capacity) };
      let files: SegmentFiles;
      try {
        files = new SegmentFiles(openSessionDir(dir, sessionId, log), capacity, segmentBytes);
      } catch (err) {
        report(`cannot create session ${sessionId}'s output log in ${dir}; keeping its output in memory`, err, { sessionId, dir });
        return { tail: new OutputLog(capacity) };
      }
      return { tail: new OutputLog(Math.min(capacity, tailBytes)), files };
    };

    const append = (sessionId: string, session: SessionOutput, stream: OutputStream, data: Uint8Array) => {
      if (data.length === 0) return;
      session.tail.append(stream, data);
      if (!session.files?.writing) return;
      try {
        session.files.append(stream, data, now());
      } catch (err) {
        session.files.close();
        // What the files hold stays readable; all that follows is kept in memory.
        session.tail.setCapacity(capacity);
        report(`cannot write session ${sessionId}'s output log in ${session.files.dir}; keeping its output in memory`, err, { sessionId, dir: session.files.dir });
      }
    };

    /** Sends at most `limit` bytes from `from` (clamped to what is held) and returns the offset after the last one sent. */
    const replay = (sessionId: string, session: SessionOutput, from: number, limit: number, send: (stream: OutputStream, data: Uint8Array) => void): number => {
      const { tail, files } = session;
      let at = from;
      let budget = limit;
      // The files serve what the tail no longer holds, if they reach up to it (a failed write may have left a hole).
      if (files && at < tail.start && files.end >= tail.start) {
        try {
          for (const record of readLoggedOutput(files.dir, { from: at })) {
            if (record.offset >= tail.start || budget <= 0) break;
            const data = record.data.subarray(0, Math.min(record.data.length, budget, tail.start - record.offset));
            send(record.stream, data);
            at = record.offset + data.length;
            budget -= data.length;
          }
        } catch (err) {
          files.close();
          session.files = undefined;
          tail.setCapacity(capacity);
          report(`cannot read session ${sessionId}'s output log in ${files.dir} to replay it from offset ${from}; replaying what memory holds`, err, { sessionId, dir: files.dir });
        }
      }
      if (budget <= 0) return at;
      const { skipped, records } = tail.read(at, budget);
      for (const record of records) send(record.stream, record.data);
      const last = records[records.length - 1];
      return last ? last.offset + last.data.length : at + skipped;
    };

    receive((command) => {
      let session = sessions.get(command.sessionId);
      if (command.type === 'APPEND') {
        if (!session) sessions.set(command.sessionId, (session = open(command.sessionId)));
        return append(command.sessionId, session, command.stream, command.data);
      }
      const server = system.get('sshServer') as AnyActorRef | undefined;
      // Answered even with nothing to send, so the channel is never left waiting for its piece.
      const to = server && session
        ? replay(command.sessionId, session, command.from, command.limit, (stream, data) => {
            server.send({ type: 'CHANNEL_OUTPUT', channelId: command.channelId, stream, data } satisfies SshServerCommand);
          })
        : command.from;
      sendBack({ type: 'REPLAYED', channelId: command.channelId, to } satisfies OutputLogEvent);
    });
    return () => {
      for (const session of sessions.values()) session.files?.close();
    };
  });
}

interface SessionOutput {
  /** The newest bytes; all of the log when there are no files to write. */
  tail: OutputLog;
  /** This boot's files; kept for reading after a write to them failed. */
  files?: SegmentFiles;
}

/**
 * A session's directory for this boot. One that an earlier boot left is kept
 * as the previous generation, replacing the one before it (and saying so), so
 * a guest restarting in a loop cannot fill its disk.
 */
function openSessionDir(logDir: string, sessionId: string, log: Log | undefined): string {
  const dir = sessionLogDir(logDir, sessionId);
  if (existsSync(dir)) {
    const previous = sessionLogDir(logDir, sessionId, 'previous');
    if (existsSync(previous)) {
      rmSync(previous, { recursive: true });
      log?.('info', `dropped session ${sessionId}'s output log from the boot before last`, { sessionId, dir: previous });
    }
    renameSync(dir, previous);
    log?.('info', `kept session ${sessionId}'s output log from the previous boot`, { sessionId, dir: previous });
  }
  mkdirSync(dir);
  return dir;
}

/**
 * One session's segment files: records appended to the newest, a new segment
 * when it holds `segmentBytes`, the oldest unlinked once the others hold
 * `capacity` without it, so the files always hold at least what the guest
 * machine's extent says.
 */
class SegmentFiles {
  readonly dir: string;
  /** Offset one past the last byte written. */
  end = 0;
  readonly #capacity: number;
  readonly #segmentBytes: number;
  /** First offsets of the segments on disk, oldest first. */
  readonly #firsts: number[] = [];
  #fd: number | undefined;
  #writing = true;
  readonly #header = Buffer.alloc(RECORD_HEADER_BYTES);

  constructor(dir: string, capacity: number, segmentBytes: number) {
    this.dir = dir;
    this.#capacity = capacity;
    this.#segmentBytes = segmentBytes;
  }

  get writing(): boolean {
    return this.#writing;
  }

  append(stream: OutputStream, data: Uint8Array, timeUs: number): void {
    if (this.#fd === undefined || this.end - this.#firsts[this.#firsts.length - 1]! >= this.#segmentBytes) this.#roll(timeUs);
    encodeRecordHeader(this.#header, stream, data.length, timeUs);
    const written = writevSync(this.#fd!, [this.#header, data]);
    // A short write leaves a cut record, which readers ignore; nothing may follow it.
    if (written !== RECORD_HEADER_BYTES + data.length) throw new Error(`wrote ${written} of ${RECORD_HEADER_BYTES + data.length} bytes (disk full?)`);
    this.end += data.length;
    while (this.#firsts.length > 1 && this.end - this.#firsts[1]! >= this.#capacity) {
      unlinkSync(join(this.dir, segmentName(this.#firsts[0]!)));
      this.#firsts.shift();
    }
  }

  /** Stops writing; never throws, as it runs on the way out of a failure. */
  close(): void {
    this.#writing = false;
    this.#release();
  }

  #roll(timeUs: number): void {
    this.#release();
    this.#fd = openSync(join(this.dir, segmentName(this.end)), 'wx');
    this.#firsts.push(this.end);
    const header = encodeFileHeader(this.end, timeUs);
    const written = writeSync(this.#fd, header);
    if (written !== header.length) throw new Error(`wrote ${written} of ${header.length} bytes (disk full?)`);
  }

  #release(): void {
    const fd = this.#fd;
    this.#fd = undefined;
    try {
      if (fd !== undefined) closeSync(fd);
    } catch {
      // The descriptor is released even when close reports an error, and every byte was written before it.
    }
  }
}
