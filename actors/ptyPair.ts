import fs from 'node:fs';
import { Duplex } from 'node:stream';
import koffi from 'koffi';
import { makeRaw, openPtyMaster, unlockPtySlave } from './libc.ts';

/**
 * A raw pseudo-terminal pair standing in for a VM's serial port: the guest
 * opens the slave as its ttyS0, the launcher bridges the master to the
 * appliance (actors/tcp.ts `bridge`), as a hypervisor does with COM1.
 *
 * The pair keeps its own descriptor on the slave open for its whole life, so
 * the pty survives the guest closing and reopening the device: without one,
 * the master reads EIO whenever no slave is open.
 *
 * The master's stream is not `tty.ReadStream` (node-pty's choice): libuv
 * cannot reopen a master, so it writes to it with blocking writes, and a
 * write larger than the slave's input queue blocks the whole event loop
 * until the guest reads (measured: 1 MiB into a raw pty nobody reads hangs
 * the process); it also turns EIO into a fatal error. Instead the stream
 * polls the non-blocking master with koffi's libuv poll handle and reads and
 * writes it directly, treating EIO as "nobody has the slave open".
 */

export interface PtyPair {
  masterFd: number;
  /** e.g. /dev/pts/3: what the guest opens as its serial device. */
  slavePath: string;
  /**
   * The line as the hypervisor sees it: the guest's output comes out, what is
   * written goes to the guest. Emits 'hangup' when it finds no slave open.
   */
  master: Duplex;
  /** Stops the stream, then closes the slave descriptor and the master. */
  close(): Promise<void>;
}

export interface PtyPairOptions {
  /**
   * Keep a slave descriptor open (default). Pass false only when another
   * process keeps the slave open for the pair's life (e.g. it was given to
   * the child as a descriptor); while nobody does, the master discards writes.
   */
  holdSlave?: boolean;
}

const O_NONBLOCK = fs.constants.O_NONBLOCK;
const O_RDWR = fs.constants.O_RDWR;
const O_NOCTTY = fs.constants.O_NOCTTY;
const O_CLOEXEC = 0o2000000;
/** How often a master without a reader looks for one again: poll reports a hung-up master as always readable. */
const NO_READER_RETRY_MS = 50;
const READ_CHUNK = 64 * 1024;

export function openPtyPair(options: PtyPairOptions = {}): PtyPair {
  const masterFd = openPtyMaster(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  let slaveFd: number | undefined;
  try {
    const slavePath = unlockPtySlave(masterFd);
    // Raw before anyone can write: a fresh pty echoes and maps CR/LF.
    slaveFd = fs.openSync(slavePath, O_RDWR | O_NOCTTY);
    makeRaw(slaveFd);
    if (options.holdSlave === false) {
      fs.closeSync(slaveFd);
      slaveFd = undefined;
    }
    const master = new PtyMaster(masterFd);
    const held = slaveFd;
    let closed: Promise<void> | undefined;
    return {
      masterFd,
      slavePath,
      master,
      close: () =>
        (closed ??= new Promise<void>((resolve) => {
          master.once('close', () => {
            if (held !== undefined) fs.closeSync(held);
            fs.closeSync(masterFd);
            resolve();
          });
          master.destroy();
        })),
    };
  } catch (err) {
    if (slaveFd !== undefined) fs.closeSync(slaveFd);
    fs.closeSync(masterFd);
    throw err;
  }
}

type PollHandle = ReturnType<typeof koffi.node.poll>;
type PollEvents = { readable: boolean; writable: boolean };

/** Duplex over a non-blocking pty master; see the module comment. */
class PtyMaster extends Duplex {
  readonly #fd: number;
  readonly #poll: PollHandle;
  readonly #scratch = Buffer.allocUnsafe(READ_CHUNK);
  /** The consumer wants data: it asked (_read) and push() has not refused more since. */
  #wantRead = false;
  /** A write the master could not take yet. */
  #pending: { chunk: Buffer; callback: (error?: Error | null) => void } | undefined;
  /** Set while no slave is open (EIO): the timer that looks again. */
  #noReader: NodeJS.Timeout | undefined;
  /** No slave has been seen since the last EIO (several retries may fail in a row). */
  #hungUp = false;

  constructor(fd: number) {
    super({ allowHalfOpen: true });
    this.#fd = fd;
    // Created idle (no events); #updatePoll arms it with what is wanted.
    this.#poll = koffi.node.poll(fd, { readable: false }, this.#onPoll as never);
  }

  override _read(): void {
    this.#wantRead = true;
    this.#readAvailable();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#pending = { chunk, callback };
    this.#writePending();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.#noReader);
    this.#poll.close();
    this.#pending?.callback(error ?? new Error('pty master closed'));
    this.#pending = undefined;
    callback(error);
  }

  // koffi calls back with (status, events); its .d.ts shows only the events.
  readonly #onPoll = (status: number, events: PollEvents): void => {
    if (status < 0) {
      this.destroy(new Error(`poll on pty master failed: status ${status}`));
      return;
    }
    if (events.writable) this.#writePending();
    if (events.readable) this.#readAvailable();
  };

  #readAvailable(): void {
    while (this.#wantRead && this.#noReader === undefined && !this.destroyed) {
      let n: number;
      try {
        n = fs.readSync(this.#fd, this.#scratch, 0, READ_CHUNK, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') break;
        if (code === 'EIO') this.#lostReader();
        else this.destroy(err as Error);
        return;
      }
      // A master reports a missing slave as EIO; end of file would mean the same.
      if (n === 0) {
        this.#lostReader();
        return;
      }
      this.#hungUp = false;
      this.#wantRead = this.push(Buffer.from(this.#scratch.subarray(0, n)));
    }
    this.#updatePoll();
  }

  #writePending(): void {
    const pending = this.#pending;
    if (!pending || this.destroyed) return;
    if (this.#noReader !== undefined) {
      // A serial line with nobody on the far end loses what is sent.
      this.#pending = undefined;
      pending.callback();
      return;
    }
    let written = 0;
    try {
      written = fs.writeSync(this.#fd, pending.chunk);
    } catch (err) {
      // EAGAIN: the slave's input queue is full (the guest is not reading); wait until it drains.
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') {
        this.#pending = undefined;
        pending.callback(err as Error);
        return;
      }
    }
    if (written === pending.chunk.length) {
      this.#pending = undefined;
      this.#updatePoll();
      pending.callback();
      return;
    }
    pending.chunk = pending.chunk.subarray(written);
    this.#updatePoll();
  }

  /** EIO: no slave descriptor is open. Look again later; meanwhile writes are dropped. */
  #lostReader(): void {
    if (!this.#hungUp) {
      this.#hungUp = true;
      this.emit('hangup');
    }
    this.#noReader = setTimeout(() => {
      this.#noReader = undefined;
      this.#readAvailable();
    }, NO_READER_RETRY_MS);
    this.#writePending();
    this.#updatePoll();
  }

  #updatePoll(): void {
    if (this.destroyed) return;
    const readable = this.#wantRead && this.#noReader === undefined;
    const writable = this.#pending !== undefined;
    if (readable || writable) this.#poll.start({ readable, writable }, this.#onPoll as never);
    else this.#poll.stop();
  }
}
