/**
 * The process actor: the only place tether starts a process. It owns one
 * session's process (pipes or a pty), starts it when told LAUNCH, reports
 * what it does, and kills its process group if stopped while it still runs.
 * Protocol (ProcessInput, ProcessCommand, ProcessReport) is declared by
 * machines/processSession.ts.
 *
 * Before spawning, the command is looked up on the session's own PATH and the
 * user resolved against the container's passwd/group, so a failure is
 * reported precisely (PROCESS_FAILED, 127 not found / 126 not runnable)
 * instead of as an exec error from inside a child.
 *
 * Every process is started through dist/confine (actors/confine.ts), which
 * sets its user, supplementary groups, capabilities, no_new_privs and
 * seccomp filter, as the container's `security` says, before it executes
 * the command; and, when the container has a user namespace, joins it
 * first, so the process's IDs are the container's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, readFileSync, readSync, statSync, type Stats } from 'node:fs';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { join, resolve } from 'node:path';
import type { IPty } from '@lydell/node-pty';
import { fromCallback } from 'xstate';
import { claimChild, releaseChild } from './childOwners.ts';
import { confinedCommand } from './confine.ts';
import { duplicate } from './libc.ts';
import { killQuietly, killTree, SIGKILL, statFields } from './processTree.ts';
import type { HeldUserns } from '../machines/boot.ts';
import type { ProcessCommand, ProcessInput, ProcessReport, SignalTarget } from '../machines/processSession.ts';
import { parseGroup, parsePasswd, resolveUser } from '../shared/passwd.ts';
import { DEFAULT_SECURITY, processConfinement, type SecurityConfig } from '../shared/security.ts';
import { signalName, signalNumber } from '../shared/signals.ts';

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface ProcessActorOptions {
  /** Directory whose etc/passwd and etc/group resolve user names (default "/"). */
  root?: string;
  /** The container's confinement (the guest config's `security`; default Docker's). */
  security?: SecurityConfig;
  /** The container's user namespace, which every process joins (the boot's); absent: the guest's own IDs. */
  userns?: HeldUserns;
}

/** What a started process accepts, whichever way it was started. */
interface Running {
  write(data: Uint8Array): void;
  closeStdin(): void;
  resize(cols: number, rows: number): void;
  signal(signo: number, target: SignalTarget): void;
  /** Stop or restart reading the process's output: a full reader holds the writer. */
  pauseOutput(paused: boolean): void;
  /** SIGKILL the process group(s) and every descendant; the session ends when the process is reaped. */
  kill(): void;
  /** Report the exit of a process whose pipes others still hold, after what it left in them. */
  finishOutput(): void;
  /** kill(), and release the streams: the actor is going away. */
  release(): void;
}

/** Everything needed to exec, after lookup, user resolution and the seccomp filter's compilation succeeded. */
interface Plan {
  file: string;
  argv: string[];
  env: Record<string, string>;
  cwd: string;
  /** What is spawned: dist/confine, which executes `file` confined. */
  command: { file: string; args: string[] };
}

type Report = (event: ProcessReport) => void;

export function createProcessActor(options: ProcessActorOptions = {}) {
  const root = options.root ?? '/';
  const security = options.security ?? DEFAULT_SECURITY;
  const { userns } = options;
  return fromCallback<ProcessCommand, ProcessInput>(({ input, sendBack, receive }) => {
    let stopped = false;
    // Events after stop would go to a parent that is gone or has moved on.
    const report: Report = (event) => {
      if (stopped) return;
      // Machines keep no clock: starts, exits and failures carry when they were seen.
      sendBack(event.type === 'PROCESS_OUTPUT' ? event : { ...event, at: new Date().toISOString() });
    };
    let size = { cols: input.cols ?? 80, rows: input.rows ?? 24 };
    let launched = false;
    let outputPaused = false;
    let stdinClosed = false;
    let running: Running | undefined;

    receive((command) => {
      switch (command.type) {
        case 'LAUNCH': {
          if (launched) return;
          launched = true;
          const plan = preparePlan(input, root, security, userns);
          if ('error' in plan) return report({ type: 'PROCESS_FAILED', ...plan });
          running = input.tty ? startPty(plan, size, report) : startPipes(plan, input.openStdin, report);
          if (outputPaused) running?.pauseOutput(true);
          return;
        }
        case 'STDIN':
          return running?.write(command.data);
        case 'CLOSE_STDIN':
          // Idempotent: on a tty each close is an EOT, and a second one would
          // end the next reader too (an attach reopened after a lost link repeats it).
          if (stdinClosed || !running) return;
          stdinClosed = true;
          return running.closeStdin();
        case 'RESIZE':
          size = { cols: command.cols, rows: command.rows };
          return running?.resize(command.cols, command.rows);
        case 'PAUSE_OUTPUT':
        case 'RESUME_OUTPUT':
          outputPaused = command.type === 'PAUSE_OUTPUT';
          return running?.pauseOutput(outputPaused);
        case 'SIGNAL': {
          const signo = signalNumber(command.signal);
          if (signo !== undefined) running?.signal(signo, command.target);
          return;
        }
        case 'KILL':
          return running?.kill();
        case 'FINISH_OUTPUT':
          return running?.finishOutput();
      }
    });

    return () => {
      stopped = true;
      running?.release();
    };
  });
}

// ---- preparation: env, user, cwd, PATH lookup ----

function preparePlan(input: ProcessInput, root: string, security: SecurityConfig, userns: HeldUserns | undefined): Plan | { error: string; exitCode: 126 | 127 } {
  const name = input.cmd[0]!;
  const fail = (exitCode: 126 | 127, reason: string) => ({ exitCode, error: `exec ${JSON.stringify(name)}: ${reason}` });

  const env: Record<string, string> = {};
  for (const entry of input.env) {
    const eq = entry.indexOf('=');
    env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  env.PATH ??= DEFAULT_PATH;

  let user;
  try {
    user = resolveUser(input.user ?? String(process.getuid!()), parsePasswd(readAccounts(root, 'passwd')), parseGroup(readAccounts(root, 'group')));
  } catch (err) {
    return fail(126, (err as Error).message);
  }
  env.HOME ??= user.home;
  const unmapped = userns === undefined ? undefined : [user.uid, user.gid, ...user.groups].find((id) => id >= userns.size);
  if (unmapped !== undefined) {
    return fail(126, `user ${JSON.stringify(input.user)}: ID ${unmapped} is outside the container's user namespace, which maps IDs 0 to ${userns!.size - 1} (docker run --userns=host keeps the host's IDs)`);
  }

  const cwdStats = statOrUndefined(input.cwd);
  if (cwdStats === undefined || !cwdStats.isDirectory()) {
    return fail(126, `working directory ${input.cwd} ${cwdStats === undefined ? 'does not exist' : 'is not a directory'}`);
  }

  // The guest sees the container's files with their host IDs.
  const found = findExecutable(name, env.PATH, input.cwd, user.uid, user.gid, userns?.hostId ?? 0);
  if ('reason' in found) return fail(found.exitCode, found.reason);
  // Without a user named, the process keeps the guest init's user and groups.
  const identity = input.user === undefined ? undefined : { uid: user.uid, gid: user.gid, groups: user.groups };
  let command;
  try {
    command = confinedCommand(found.file, input.cmd, identity, processConfinement(security, input.privileged === true), userns?.fd);
  } catch (err) {
    return fail(126, `cannot confine it: ${(err as Error).message}`);
  }
  return { file: found.file, argv: input.cmd, env, cwd: input.cwd, command };
}

/** A missing passwd or group file (a scratch image) just means no names resolve. */
function readAccounts(root: string, file: 'passwd' | 'group'): string {
  try {
    return readFileSync(join(root, 'etc', file), 'utf8');
  } catch {
    return '';
  }
}

/**
 * execvp's search, done here so the outcome is known before forking: a name
 * with a slash is used as is (relative to cwd); otherwise each PATH entry is
 * tried in order, skipping files the user may not execute, and the search
 * fails with 126 if such a file was seen, else 127.
 */
function findExecutable(name: string, path: string, cwd: string, uid: number, gid: number, hostShift: number):
  { file: string } | { exitCode: 126 | 127; reason: string } {
  const problemOf = (file: string) => executableProblem(statOrUndefined(file), uid, gid, hostShift);
  if (name.includes('/')) {
    const file = resolve(cwd, name);
    const problem = problemOf(file);
    if (problem === undefined) return { file };
    return problem === 'no such file' ? { exitCode: 127, reason: problem } : { exitCode: 126, reason: problem };
  }
  let denied: string | undefined;
  for (const dir of path.split(':')) {
    // An empty PATH entry means the working directory, as in execvp.
    const file = resolve(cwd, dir, name);
    const problem = problemOf(file);
    if (problem === undefined) return { file };
    if (problem !== 'no such file') denied ??= `${file} ${problem}`;
  }
  return denied === undefined
    ? { exitCode: 127, reason: `not found in PATH ${path}` }
    : { exitCode: 126, reason: `${denied} (searched PATH ${path})` };
}

/** `hostShift`: what the container's IDs are on the host, where `stats` was read. */
function executableProblem(stats: Stats | undefined, uid: number, gid: number, hostShift: number): string | undefined {
  if (stats === undefined) return 'no such file';
  if (stats.isDirectory()) return 'is a directory';
  if (!stats.isFile()) return 'is not a regular file';
  // The kernel's rule: root needs any execute bit; others the owner's, group's or other's bit.
  const bits = uid === 0 ? 0o111 : stats.uid === uid + hostShift ? 0o100 : stats.gid === gid + hostShift ? 0o010 : 0o001;
  return (stats.mode & bits) === 0 ? 'is not executable (permission denied)' : undefined;
}

function statOrUndefined(file: string): Stats | undefined {
  try {
    return statSync(file);
  } catch {
    return undefined;
  }
}

// ---- pipes ----

/**
 * A new session (detached: setsid) so the whole group can be signalled and
 * killed; stdin is /dev/null unless the session keeps stdin open. Exit is
 * reported on 'close', which Node emits once the process has exited and
 * stdout and stderr have both ended, so it follows all output; or, when
 * others hold the pipes past the exit, on FINISH_OUTPUT after what is in
 * them (PROCESS_REAPED tells the session to decide).
 *
 * dist/confine, not libuv, changes the user: libuv's spawn would clear the
 * supplementary groups (setgroups(0)) whenever it changes uid or gid.
 */
function startPipes(plan: Plan, openStdin: boolean, report: Report): Running | undefined {
  let child: ChildProcess;
  try {
    child = spawn(plan.command.file, plan.command.args, {
      cwd: plan.cwd,
      env: plan.env,
      detached: true,
      stdio: [openStdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    report(spawnFailure(plan, err));
    return undefined;
  }
  const pid = child.pid;
  if (pid === undefined) {
    // Node reports these spawn failures (EACCES, ENOENT from a missing
    // interpreter, ...) asynchronously, as 'error'.
    child.once('error', (err) => report(spawnFailure(plan, err)));
    return undefined;
  }
  report({ type: 'PROCESS_STARTED', pid });

  let exited = false;
  child.stdout!.on('data', (data: Buffer) => report({ type: 'PROCESS_OUTPUT', stream: 'stdout', data }));
  child.stderr!.on('data', (data: Buffer) => report({ type: 'PROCESS_OUTPUT', stream: 'stderr', data }));
  // A process that stops reading stdin makes writes fail with EPIPE: that is
  // the process's business, not a failure of the session.
  child.stdin?.on('error', () => {});
  const finish = (code: number | null, signal: NodeJS.Signals | null) => {
    if (exited) return;
    exited = true;
    report(exitReport(code, signal === null ? 0 : constants.signals[signal]));
  };
  child.on('close', finish);
  // 'close' waits for the pipes to end, and a descendant that outlives the
  // process (a daemon it started) may hold them open for good: the session
  // decides how long to wait (FINISH_OUTPUT).
  let status: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  child.on('exit', (code, signal) => {
    status = { code, signal };
    // On this tick 'close' may still follow at once; the session gets the news either way.
    if (!exited) report({ type: 'PROCESS_REAPED' });
  });

  return {
    write: (data) => void child.stdin?.write(data),
    closeStdin: () => void child.stdin?.end(),
    resize: () => {},
    signal: (signo, target) => killQuietly(target === 'process' ? pid : -pid, signo),
    pauseOutput: (paused) => {
      for (const stream of [child.stdout!, child.stderr!]) {
        if (paused) stream.pause();
        else stream.resume();
      }
    },
    // Once reaped, its PID may be another process's: only its group is left to kill.
    kill: () => {
      if (exited) return;
      if (status) killQuietly(-pid, SIGKILL);
      else killTree(pid, [-pid]);
    },
    finishOutput: () => {
      if (exited || !status) return;
      for (const [name, stream] of [['stdout', child.stdout!], ['stderr', child.stderr!]] as const) {
        for (const data of drain(stream)) report({ type: 'PROCESS_OUTPUT', stream: name, data });
      }
      finish(status.code, status.signal);
    },
    release() {
      this.kill();
      // Descendants that left the group may still hold the pipes; let go of them.
      for (const stream of [child.stdin, child.stdout, child.stderr]) stream?.destroy();
    },
  };
}

/**
 * Everything a pipe holds now: what its stream has buffered goes out as
 * 'data' events (read() emits them), and what the kernel still has is
 * returned (libuv's descriptors are non-blocking: EAGAIN means empty).
 */
function drain(stream: Readable): Buffer[] {
  while (stream.read() !== null);
  const fd = (stream as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return fd === undefined || fd < 0 ? [] : readAvailable(fd);
}

/**
 * Reads a non-blocking descriptor until it has nothing more: end of file, or
 * an error (EAGAIN: drained for now; EIO on a pty master: drained and closed).
 */
function readAvailable(fd: number): Buffer[] {
  const chunks: Buffer[] = [];
  const scratch = Buffer.allocUnsafe(64 * 1024);
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, scratch);
    } catch {
      return chunks;
    }
    if (n === 0) return chunks;
    chunks.push(Buffer.from(scratch.subarray(0, n)));
  }
}

function spawnFailure(plan: Plan, err: unknown): ProcessReport {
  const code = (err as NodeJS.ErrnoException).code ?? String(err);
  // The file was found and checked, so an error here is about running it
  // (a missing #! interpreter or loader gives ENOENT): 126.
  return { type: 'PROCESS_FAILED', exitCode: 126, error: `exec ${JSON.stringify(plan.argv[0])}: cannot execute ${plan.file}: ${code}` };
}

// ---- pty ----

let ptyModule: typeof import('@lydell/node-pty') | undefined;

/**
 * node-pty, loaded by the first tty session rather than when the guest
 * starts: a container without a terminal never needs it. Synchronous, so a
 * launch stays one step (actors/preload.ts loads it before a pivot).
 */
function nodePty(): typeof import('@lydell/node-pty') {
  return (ptyModule ??= createRequire(import.meta.url)('@lydell/node-pty') as typeof import('@lydell/node-pty'));
}

/**
 * node-pty makes the child a session leader with the pty as its controlling
 * terminal. Output arrives as Buffers because of `encoding: null` (its types
 * say string; with null it hands out the bytes read), and `write` passes a
 * Uint8Array straight to the socket, so bytes go both ways untouched.
 */
function startPty(plan: Plan, size: { cols: number; rows: number }, report: Report): Running | undefined {
  let term: IPty;
  try {
    term = nodePty().spawn(plan.command.file, plan.command.args, {
      name: plan.env.TERM ?? 'xterm',
      cols: size.cols,
      rows: size.rows,
      cwd: plan.cwd,
      env: plan.env,
      encoding: null,
    });
  } catch (err) {
    report(spawnFailure(plan, err));
    return undefined;
  }
  const pid = term.pid;
  // node-pty waits for this child itself: the guest's reaper must leave it alone.
  claimChild(pid);
  report({ type: 'PROCESS_STARTED', pid });

  let exited = false;
  const output = (data: Buffer) => report({ type: 'PROCESS_OUTPUT', stream: 'stdout', data });
  term.onData((data) => output(data as unknown as Buffer));
  const close = readToTheEnd(term, output);
  // node-pty emits exit only after its socket closed, i.e. after the last data event.
  // A process that closes its terminal before it exits (cat does, at EOF)
  // makes the master read EIO, and node-pty then closes the master: the kernel
  // hangs the terminal up and SIGHUPs the process in its last steps, turning
  // exit 0 into 129 (measured: about 1 run in 7). Holding a second descriptor
  // on the master until the process is reaped keeps the terminal up.
  const releaseMaster = holdOpen((term as unknown as { fd: number }).fd);
  term.onExit(({ exitCode, signal }) => {
    exited = true;
    releaseChild(pid);
    releaseMaster();
    report(exitReport(exitCode, signal ?? 0));
  });

  return {
    write: (data) => term.write(data as unknown as string),
    // EOT is how a terminal says end-of-file to a reader in canonical mode.
    closeStdin: () => term.write(EOT as unknown as string),
    resize: (cols, rows) => {
      try {
        term.resize(cols, rows);
      } catch {
        // Invalid sizes and a pty already closed are both nothing to apply.
      }
    },
    signal: (signo, target) => killQuietly(target === 'process' ? pid : target === 'group' ? -pid : ptySignalTarget(pid), signo),
    pauseOutput: (paused) => (paused ? term.pause() : term.resume()),
    kill: () => {
      if (!exited) killTree(pid, [...new Set([ptySignalTarget(pid), -pid])]);
    },
    // node-pty reports the exit itself, after its last byte (see readToTheEnd).
    finishOutput: () => {},
    release() {
      this.kill();
      releaseMaster();
      close();
    },
  };
}

const EOT = Uint8Array.of(0x04);

/**
 * Makes sure every byte written to the pty is read, working around two
 * places where node-pty over libuv drops the tail of the output (seen here:
 * several KiB lost from a 300 KB write whenever the event loop was busy as the
 * process exited):
 *
 * - node-pty, once the child has exited, gives the pty 200 ms to close and
 *   then destroys its socket (a macOS workaround), discarding what the kernel
 *   still buffers and cutting off descendants still writing. The only
 *   no-argument `destroy()` on a still-readable socket is that timer's, so it
 *   is ignored: the socket closes when the pty does, as pipes end on EOF.
 * - libuv takes POLLHUP after a short read as end-of-file. On a pipe a short
 *   read means drained, but a pty master hands out about 4 KiB per read
 *   whatever is buffered, so when the last writer closes the slave, all but
 *   one read's worth is still in the kernel when libuv declares the end. On 'end' (before the fd
 *   is closed) the rest is read synchronously; POLLHUP means no writer is
 *   left, so the kernel buffer is all there is and the read stops at EIO.
 *
 * Returns the function that closes the pty for good.
 */
function readToTheEnd(term: IPty, output: (data: Buffer) => void): () => void {
  const { _socket: socket, fd } = term as unknown as { _socket: Socket; fd: number };
  const destroy = socket.destroy;
  let closing = false;
  socket.destroy = function (this: Socket, error?: Error) {
    return error === undefined && !closing && !this.readableEnded ? this : destroy.call(this, error);
  };
  socket.on('end', () => {
    for (const data of readAvailable(fd)) output(data);
  });
  // node-pty rethrows read errors other than EIO when it is the only
  // listener, which in PID 1 would end everything; the close that follows
  // any error already ends the session.
  socket.on('error', () => {});
  return () => {
    closing = true;
    socket.destroy();
  };
}

/**
 * Where a signal for a tty session goes (a kill(2) target): where the
 * terminal itself sends Ctrl-C, the pty's foreground process group. That is
 * the session's process group unless a job-control shell has handed the
 * terminal to a job, and then the job is what the user means; the shell, at
 * its prompt, must not get it (an interactive shell takes INT as "abandon
 * this command line"). The kernel keeps the group in /proc/PID/stat (tpgid).
 *
 * node-pty returns as soon as it has forked, so the child may not have made
 * its session yet: until it leads one (sid = pid), the child alone is the
 * target (node-pty resets its signal handlers, so the default action
 * applies). Once the process is gone, its group is what is left.
 */
function ptySignalTarget(pid: number): number {
  const fields = statFields(pid);
  if (fields === undefined) return -pid;
  if (Number(fields[3]) !== pid) return pid;
  const tpgid = Number(fields[5]);
  return tpgid > 0 ? -tpgid : -pid;
}

// ---- shared ----

/**
 * The exit report for a wait status: the signal's name when one killed the
 * process, else the exit code. A signal without a name (32, 33) is reported
 * as the shell would, 128 + n.
 */
function exitReport(code: number | null, signo: number): ProcessReport {
  if (signo === 0) return { type: 'PROCESS_EXITED', exitCode: code ?? 0 };
  const signal = signalName(signo);
  return signal === undefined ? { type: 'PROCESS_EXITED', exitCode: 128 + signo } : { type: 'PROCESS_EXITED', signal };
}


/**
 * Holds a second descriptor on `fd`'s open file; returns the release, which
 * closes it once, never a reused number.
 */
function holdOpen(fd: number): () => void {
  let held: number | undefined;
  try {
    held = duplicate(fd);
  } catch {
    held = undefined;
  }
  return () => {
    if (held === undefined) return;
    closeSync(held);
    held = undefined;
  };
}
