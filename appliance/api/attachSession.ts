/**
 * One attached client on a hijacked connection: container output to the
 * client (raw for a tty, framed otherwise), client bytes to the process's
 * stdin, detach keys, and who ends what.
 *
 * Ending, as Docker does it:
 * - the process's output ends (`done`): end the connection;
 * - detach keys in the client's bytes: detach, end the connection;
 * - the client half-closes: a non-tty process gets EOF on stdin and output
 *   keeps flowing until it ends; a tty has no EOF of its own (ctrl-d is just
 *   a byte), and `docker attach` closes its side when it detaches on its own
 *   (it watches for the keys itself in tty mode), so for a tty this detaches;
 * - the connection breaks: detach, the process keeps running.
 */
import type { Duplex, Readable } from 'node:stream';
import { DetachKeyScanner } from './detachKeys.ts';
import type { Attachment } from './directory.ts';
import { messageOf } from './errors.ts';
import type { ApiLog } from './log.ts';
import { frameHeader, STDERR, STDOUT, type StreamType } from './multiplex.ts';

export interface AttachSession {
  readonly socket: Duplex;
  /** Client bytes that arrived with the request, after its headers. */
  readonly head: Buffer;
  readonly attachment: Attachment;
  readonly detachKeys: Uint8Array;
  readonly log: ApiLog;
  /** Names the container in log lines. */
  readonly label: string;
}

export function runAttachSession(session: AttachSession): void {
  const { socket, attachment } = session;
  const say = (level: Parameters<ApiLog>[0], message: string) => session.log(level, `attach ${session.label}: ${message}`);
  const outputs: Readable[] = attachment.stderr ? [attachment.stdout, attachment.stderr] : [attachment.stdout];

  let streaming = true;
  let detached = false;
  let finished = false;

  const stopStreaming = () => {
    streaming = false;
    // A pause for backpressure would never be lifted now; keep the streams
    // flowing (into nothing) so the directory can end them and settle `done`.
    for (const output of outputs) output.resume();
  };
  const detach = (why: string) => {
    if (detached || finished) return;
    detached = true;
    say('debug', `detaching: ${why}`);
    attachment.detach();
    stopStreaming();
  };
  const finish = () => {
    if (finished) return;
    finished = true;
    stopStreaming();
    socket.end();
  };

  const forward = (frame: (chunk: Buffer) => Buffer) => (chunk: Buffer | string) => {
    if (!streaming || !socket.writable || chunk.length === 0) return;
    if (!socket.write(frame(Buffer.from(chunk)))) for (const output of outputs) output.pause();
  };
  const framed = (stream: StreamType) => (chunk: Buffer) => Buffer.concat([frameHeader(stream, chunk.length), chunk]);
  attachment.stdout.on('data', forward(attachment.tty ? (chunk) => chunk : framed(STDOUT)));
  attachment.stderr?.on('data', forward(framed(STDERR)));
  socket.on('drain', () => {
    if (streaming) for (const output of outputs) output.resume();
  });
  for (const output of outputs) output.on('error', (error) => say('debug', `output: ${error.message}`));

  const stdin = attachment.stdin;
  if (stdin) {
    // As Docker: only a terminal's input is watched for the detach keys; any other is data, byte for byte.
    const scanner = attachment.tty ? new DetachKeyScanner(session.detachKeys) : undefined;
    let inputPaused = false;
    stdin.on('drain', () => {
      if (!inputPaused) return;
      inputPaused = false;
      socket.resume();
    });
    stdin.on('error', (error) => say('debug', `stdin: ${error.message}`));
    const receive = (chunk: Buffer) => {
      if (detached || finished) return;
      const scanned = scanner ? scanner.scan(chunk) : { forward: chunk, detached: false };
      if (scanned.forward.length > 0 && !stdin.write(scanned.forward)) {
        inputPaused = true;
        socket.pause();
      }
      if (scanned.detached) {
        detach('detach keys');
        finish();
      }
    };
    socket.on('data', receive);
    socket.on('end', () => {
      if (detached || finished) return;
      const held = scanner?.flush();
      if (held && held.length > 0) stdin.write(held);
      if (attachment.tty) detach('client closed its side');
      else stdin.end();
    });
    if (session.head.length > 0) receive(session.head);
  } else {
    // Nothing takes client bytes; drop them so the connection keeps flowing.
    socket.resume();
  }

  socket.on('error', (error) => say('debug', `connection: ${error.message}`));
  socket.on('close', () => detach('connection closed'));
  if (socket.destroyed) detach('client left before the attach was ready');

  attachment.done.then(
    (result) => {
      say('debug', `output ended (${result.detached ? 'detached' : `exit code ${result.exitCode ?? 'unknown'}${result.signal ? `, signal ${result.signal}` : ''}`})`);
      finish();
    },
    (error: unknown) => {
      say('warn', `output failed: ${messageOf(error)}`);
      finish();
    },
  );
}
