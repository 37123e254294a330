/**
 * Docker's stream framing. A tty container's output is one stream and goes
 * out raw; otherwise stdout and stderr share the connection, each chunk
 * behind an 8-byte header: byte 0 the stream (1 stdout, 2 stderr), bytes 1-3
 * zero, bytes 4-7 the payload length, big-endian.
 */
export const RAW_STREAM = 'application/vnd.docker.raw-stream';
export const MULTIPLEXED_STREAM = 'application/vnd.docker.multiplexed-stream';

export const STDOUT = 1;
export const STDERR = 2;
export type StreamType = typeof STDOUT | typeof STDERR;

export function frameHeader(stream: StreamType, length: number): Buffer {
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(length, 4);
  return header;
}
