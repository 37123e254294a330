import fs from 'node:fs';
import net from 'node:net';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { promisify } from 'node:util';
import type { AutoDetectTypes, LinuxBindingInterface, LinuxPortBinding } from '@serialport/bindings-cpp';
import type { SerialPortOpenOptions } from 'serialport';
import { fromCallback } from 'xstate';
import type { PortCommand, PortEvent, PortInput } from '../machines/serialLink.ts';
import type { ResourceTable } from './resources.ts';

/**
 * The port actor: opens the guest's serial device and speaks the link's port
 * contract (machines/serialLink.ts: PortEvent out, PortCommand in).
 *
 * A tty device is opened with serialport. @serialport/bindings-cpp makes it
 * raw on open (c_iflag = IGNPAR, c_oflag = 0, c_lflag = 0: no echo, no CR/LF
 * mapping, no signals; checked on a pty in test/pty-pair.test.ts) and flushes
 * both queues (tcflush), which drops stale input before the handshake even
 * starts. `lock: false`: serialport's lock is an flock(2) that fails while any
 * other descriptor of the device holds one (a previous open still closing,
 * another process); a line the launcher also holds open is not ours to lock.
 *
 * `tcp://HOST:PORT` is a plain TCP client connection instead: the same line
 * without a pty, for benchmarks and tests.
 */
export function createSerialPortActor(table: ResourceTable) {
  return lineActor<PortInput>(table, async ({ device }) => {
    const line = device.startsWith('tcp://') ? await connectTcp(device) : await openTty(device);
    return { line, handle: table.put('serial', line.stream), announce: true };
  });
}

/** An open line: its stream and how to close it completely. */
export interface OpenLine {
  name: string;
  stream: Duplex;
  /** Resolves once the underlying descriptor is closed, whoever started closing it. */
  close(): Promise<void>;
}

export interface OpenedLine {
  line: OpenLine;
  /** The stream's handle in the ResourceTable; deleted when the line closes. */
  handle: string;
  /** Report PORT_OPENED (false when the parent already knows the handle). */
  announce: boolean;
}

/**
 * Actor logic for any line speaking the port contract: reports what it reads
 * as PORT_BYTES until HAND_OFF, writes WRITE, reports the line's end as
 * PORT_CLOSED once the descriptor is closed, and answers CLOSE the same way.
 *
 * Reading uses 'readable' and read(), which returns everything buffered, and
 * checks for HAND_OFF before each read: the handshake finishes synchronously
 * inside the PORT_BYTES that carries its last byte, so no byte is read after
 * the hand-off and nothing needs to be pushed back. Removing the 'readable'
 * listener returns the stream to its initial mode, so whoever takes it next
 * receives the rest simply by listening for 'data' or piping.
 */
export function lineActor<I>(table: ResourceTable, open: (input: I) => Promise<OpenedLine>) {
  return fromCallback<PortCommand, I>(({ input, sendBack, receive }) => {
    const report = (event: PortEvent) => sendBack(event);
    let opened: OpenedLine | undefined;
    let closing: Promise<void> | undefined;
    let handedOff = false;
    let stopped = false;

    const onReadable = () => {
      let chunk: Buffer | null;
      while (!handedOff && (chunk = opened!.line.stream.read() as Buffer | null) !== null) report({ type: 'PORT_BYTES', data: chunk });
    };

    const close = (): Promise<void> => {
      if (!opened) return Promise.resolve();
      const { line, handle } = opened;
      return (closing ??= line.close().then(() => table.delete(handle)));
    };
    /** The line ended without being asked to. */
    const lost = (error: string) => {
      if (closing) return;
      void close().then(() => report({ type: 'PORT_CLOSED', error }));
    };

    open(input).then(
      (result) => {
        opened = result;
        const { stream, name } = result.line;
        if (stopped) {
          void close();
          return;
        }
        // Kept after the hand-off too: the line's end is still ours to report.
        stream.on('error', (err: Error) => lost(`${name}: ${err.message}`));
        stream.on('end', () => lost(`${name}: end of stream`));
        // serialport passes its disconnect error here; a socket passes a flag.
        stream.on('close', (why: unknown) => lost(`${name}: ${why instanceof Error ? why.message : 'closed'}`));
        if (result.announce) report({ type: 'PORT_OPENED', handle: result.handle });
        stream.on('readable', onReadable);
        // An accepted socket can die before its actor takes it.
        if (stream.destroyed) lost(`${name}: closed`);
      },
      (err: Error) => {
        if (!stopped) report({ type: 'PORT_CLOSED', error: err.message });
      },
    );

    receive((command) => {
      switch (command.type) {
        case 'WRITE':
          if (opened && !closing) opened.line.stream.write(command.data);
          break;
        case 'HAND_OFF':
          handedOff = true;
          opened?.line.stream.off('readable', onReadable);
          break;
        case 'CLOSE':
          void close().then(() => report({ type: 'PORT_CLOSED' }));
          break;
      }
    });

    return () => {
      stopped = true;
      void close();
    };
  });
}

/**
 * The platform binding, with two repairs:
 * - a read of 0 bytes ends the line: on a tty opened with VMIN=1 that is a
 *   hang-up (a pty whose master closed), and bindings-cpp's own read retries
 *   it forever, spinning the thread pool;
 * - its poller polls for every event someone waits on: bindings-cpp 13 asks
 *   libuv for only the newest event, so a writer waiting for "writable" while
 *   the reader waits for "readable" is forgotten, and the guest's output
 *   stalls for good once the line is full.
 */
function hangUpBinding(linux: LinuxBindingInterface): LinuxBindingInterface {
  return {
    ...linux,
    async open(options) {
      const port = await linux.open(options);
      port.read = (buffer, offset, length) => readUntilHangUp(port, buffer, offset, length);
      pollForEveryWaiter(port.poller);
      return port;
    },
  };
}

const UV_READABLE = 1;
const UV_WRITABLE = 2;

function pollForEveryWaiter(poller: LinuxPortBinding['poller']): void {
  const poll = poller.poll.bind(poller);
  poller.poll = (flag = 0) => {
    let events = flag;
    if (poller.listenerCount('readable') > 0) events |= UV_READABLE;
    if (poller.listenerCount('writable') > 0) events |= UV_WRITABLE;
    poll(events);
  };
}

const readAsync = promisify(fs.read);

async function readUntilHangUp(port: LinuxPortBinding, buffer: Buffer, offset: number, length: number) {
  // `canceled` tells the stream this is a close it asked for, not a loss.
  const closed = () => Object.assign(new Error('Port is not open'), { canceled: true });
  for (;;) {
    if (port.fd === null) throw closed();
    try {
      const { bytesRead } = await readAsync(port.fd, buffer, offset, length, null);
      if (bytesRead === 0) throw new Error('hung up');
      return { buffer, bytesRead };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EAGAIN' && code !== 'EWOULDBLOCK' && code !== 'EINTR') throw err;
      // Closed while the read was in the thread pool: its poller is gone,
      // and polling a destroyed one crashes the process.
      if (port.fd === null) throw closed();
      await new Promise<void>((resolve, reject) => port.poller.once('readable', (error?: Error | null) => (error ? reject(error) : resolve())));
    }
  }
}

/**
 * serialport and its native binding are loaded on the first open, not when
 * the guest starts: the init's first job is to start the container's
 * process, and they cost it some 15 ms (measured by bench/pid1.ts's author).
 */
let binding: Promise<{ SerialPort: typeof import('serialport').SerialPort; binding: LinuxBindingInterface }> | undefined;

async function openTty(path: string): Promise<OpenLine> {
  binding ??= import('serialport').then(({ SerialPort }) => ({ SerialPort, binding: hangUpBinding(SerialPort.binding as LinuxBindingInterface) }));
  const { SerialPort, binding: hangUp } = await binding;
  // SerialPort takes a binding at run time though its option type leaves it out.
  const options = { path, baudRate: 115200, lock: false, hupcl: false, autoOpen: false, binding: hangUp };
  const port = new SerialPort(options as SerialPortOpenOptions<AutoDetectTypes>);
  return new Promise((resolve, reject) => {
    port.open((err) => {
      if (err) {
        reject(err.message.includes(path) ? err : new Error(`cannot open ${path}: ${err.message}`));
        return;
      }
      resolve({
        name: path,
        stream: port,
        // A stream destroyed by its user (ssh2 does that) still holds the
        // descriptor: SerialPortStream has no _destroy, only close().
        close: () =>
          new Promise<void>((resolve) => {
            if (port.closing) port.once('close', () => resolve());
            // Resolves on error too: the descriptor is then gone or was never ours.
            else if (port.port?.isOpen) port.close(() => resolve());
            else resolve();
          }),
      });
    });
  });
}

function connectTcp(device: string): Promise<OpenLine> {
  const url = new URL(device);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(url.port);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, noDelay: true });
    socket.once('error', (err) => reject(new Error(`cannot connect to ${device}: ${err.message}`)));
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      resolve(socketLine(device, socket));
    });
  });
}

/** A connected socket as a line (also used for the appliance's accepted connections). */
export function socketLine(name: string, socket: net.Socket): OpenLine {
  // Handshake frames are a few bytes each: Nagle would hold them back.
  socket.setNoDelay(true);
  return {
    name,
    stream: socket,
    close: async () => {
      if (socket.closed) return;
      const closed = once(socket, 'close');
      socket.destroy();
      await closed;
    },
  };
}
