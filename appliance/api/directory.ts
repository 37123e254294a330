/**
 * What the Docker API layer needs from the rest of the appliance. The API
 * layer only translates HTTP to these calls; which containerVM a container
 * lives in, and whether its link is up, is the connection map's business.
 * Failures are thrown as `ApiError` (errors.ts) so their HTTP status survives.
 */
import type { Readable, Writable } from 'node:stream';
import type { ContainerInfo } from '../../shared/wire.ts';
import type { SessionConfig } from '../../shared/config.ts';

export type { ContainerState } from '../../shared/wire.ts';

/** A container as its guest reports it, plus what the appliance knows of it. */
export interface ContainerRecord extends ContainerInfo {
  /** ISO 8601 */
  created: string;
  /** The containerVM it lives in. */
  vm: string;
  /** e.g. "connected since ...", "link down since ... (3 reconnects)" */
  link: { up: boolean; detail: string };
}

export interface AttachOptions {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  stream: boolean;
  logs: boolean;
}

export interface Attachment {
  readonly tty: boolean;
  /** tty: all output; otherwise stdout only. */
  readonly stdout: Readable;
  /** Absent when tty. */
  readonly stderr?: Readable;
  /** Present when stdin was requested and the container has OpenStdin; end() closes the process's stdin. */
  readonly stdin?: Writable;
  /** Stop streaming, leave the process running and its stdin open. */
  detach(): void;
  /** Resolves after stdout/stderr ended. */
  readonly done: Promise<{ exitCode?: number; signal?: string; detached: boolean }>;
}

export type WaitCondition = 'not-running' | 'next-exit' | 'removed';

/** Docker's kill and stop: what the API can make a container's process do. */
export interface ContainerControl {
  /** Sends `signal` (a canonical name, shared/signals.ts) to the container's process, or to its whole process group. */
  kill(id: string, signal: string, options?: { group?: boolean }): Promise<void>;
  /**
   * Stops the container and resolves once its guest reports the exit, or at
   * once with 'not-running' when there is nothing to stop. `timeout`: seconds
   * from the stop signal to SIGKILL (default: the container's own). `signal`:
   * sent instead of the container's stop signal.
   */
  stop(id: string, options?: { timeout?: number; signal?: string }): Promise<'stopped' | 'not-running'>;
  /**
   * Starts `spec` as a new session `sessionId` in the container's VM (an
   * exec), and resolves once its guest lists it: from then on it can be
   * attached to, inspected, killed as a container of its own.
   */
  exec(id: string, sessionId: string, spec: SessionConfig, size?: { cols: number; rows: number }): Promise<ContainerRecord>;
}

export interface ContainerDirectory {
  list(): ContainerRecord[];
  /** Full ID, unique ID prefix, or name (with or without leading '/'). */
  find(ref: string): ContainerRecord | undefined;
  /** What the appliance knows about a ref that `find` did not find: part of the 404. */
  explainUnknown(ref: string): string;
  attach(id: string, options: AttachOptions): Promise<Attachment>;
  resize(id: string, size: { cols: number; rows: number }): Promise<void>;
  wait(id: string, condition: WaitCondition): Promise<{ exitCode: number; error?: string }>;
}
