/**
 * `docker exec`: create (`POST /containers/{id}/exec`), start
 * (`POST /exec/{id}/start`, hijacked like an attach), inspect
 * (`GET /exec/{id}/json`) and resize (`POST /exec/{id}/resize`).
 *
 * An exec instance is kept here until it starts; starting it asks the
 * container's guest for a new session (`exec@tether`) held until its
 * attach is open (run-block), so its output is there from the first byte.
 * From then on the session is the guest's, and inspect reads it from the
 * inventory. Instances live as long as the appliance process, as Docker's
 * live until their container goes.
 */
import { randomBytes } from 'node:crypto';
import { DEFAULT_STOP_TIMEOUT, type SessionConfig } from '../../shared/config.ts';
import { runAttachSession } from './attachSession.ts';
import { readJsonBody } from './body.ts';
import { findContainer } from './containers.ts';
import { parseDetachKeys } from './detachKeys.ts';
import type { ContainerControl, ContainerDirectory, ContainerRecord } from './directory.ts';
import { ApiError } from './errors.ts';
import type { ApiLog } from './log.ts';
import { MULTIPLEXED_STREAM, RAW_STREAM } from './multiplex.ts';
import { requiredIntParam } from './query.ts';
import { json, type Reply } from './reply.ts';
import type { Route } from './router.ts';

/** What `docker exec` asked for (the create body's fields tether uses). */
export interface ExecConfig {
  containerId: string;
  cmd: string[];
  env: string[];
  cwd?: string;
  user?: string;
  tty: boolean;
  attachStdin: boolean;
  attachStdout: boolean;
  attachStderr: boolean;
  detachKeys?: string;
  consoleSize?: { rows: number; cols: number };
  /** Every capability for the process (`docker exec --privileged`); the container's seccomp filter stays, as in Docker. */
  privileged: boolean;
}

interface ExecInstance {
  id: string;
  config: ExecConfig;
  /** Its session in the guest, once started. */
  sessionId?: string;
}

/** A create body as Docker documents it; throws Docker's 400 naming the field. */
export function parseExecCreate(containerId: string, body: unknown): ExecConfig {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError(400, 'exec create: expected a JSON object body');
  const o = body as Record<string, unknown>;
  const strings = (name: string, value: unknown): string[] => {
    if (value === undefined || value === null) return [];
    if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value;
    throw new ApiError(400, `exec create: ${name} must be an array of strings`);
  };
  const text = (name: string, value: unknown): string | undefined => {
    if (value === undefined || value === null || value === '') return undefined;
    if (typeof value === 'string') return value;
    throw new ApiError(400, `exec create: ${name} must be a string`);
  };
  const cmd = strings('Cmd', o.Cmd);
  if (cmd.length === 0) throw new ApiError(400, 'No exec command specified');
  const size = consoleSize(o.ConsoleSize);
  const cwd = text('WorkingDir', o.WorkingDir);
  const user = text('User', o.User);
  const detachKeys = text('DetachKeys', o.DetachKeys);
  if (o.Privileged !== undefined && o.Privileged !== null && typeof o.Privileged !== 'boolean') {
    throw new ApiError(400, `exec create: Privileged must be true or false, got ${JSON.stringify(o.Privileged)}`);
  }
  return {
    containerId,
    cmd,
    env: strings('Env', o.Env),
    ...(cwd === undefined ? {} : { cwd }),
    ...(user === undefined ? {} : { user }),
    tty: o.Tty === true,
    attachStdin: o.AttachStdin === true,
    attachStdout: o.AttachStdout === true,
    attachStderr: o.AttachStderr === true,
    ...(detachKeys === undefined ? {} : { detachKeys }),
    ...(size === undefined ? {} : { consoleSize: size }),
    privileged: o.Privileged === true,
  };
}

/** Docker's ConsoleSize, [rows, columns]; anything else is no size. */
function consoleSize(value: unknown): { rows: number; cols: number } | undefined {
  return Array.isArray(value) && value.length === 2 && value.every((n) => Number.isInteger(n) && n > 0 && n <= 65535)
    ? { rows: value[0] as number, cols: value[1] as number }
    : undefined;
}

/** The guest session an exec becomes: held until attached unless detached, so no byte is missed. */
export function execSession(config: ExecConfig, detach: boolean): SessionConfig {
  return {
    cmd: config.cmd,
    env: config.env,
    cwd: config.cwd ?? '/',
    ...(config.user === undefined ? {} : { user: config.user }),
    tty: config.tty,
    openStdin: config.attachStdin && !detach,
    runBlock: !detach,
    stopSignal: 'TERM',
    stopTimeout: DEFAULT_STOP_TIMEOUT,
    restart: { name: 'no' },
    ...(config.privileged ? { privileged: true } : {}),
  };
}

/** `GET /exec/{id}/json`, from the instance and, once started, its session. */
export function execView(instance: ExecInstance, session: ContainerRecord | undefined) {
  const finished = session?.state === 'exited' || session?.state === 'failed';
  return {
    ID: instance.id,
    Running: session !== undefined && !finished,
    ExitCode: finished ? (session.exitCode ?? 0) : null,
    ProcessConfig: {
      tty: instance.config.tty,
      entrypoint: instance.config.cmd[0],
      arguments: instance.config.cmd.slice(1),
      privileged: instance.config.privileged,
      ...(instance.config.user === undefined ? {} : { user: instance.config.user }),
    },
    OpenStdin: instance.config.attachStdin,
    OpenStderr: instance.config.attachStderr,
    OpenStdout: instance.config.attachStdout,
    CanRemove: false,
    ContainerID: instance.config.containerId,
    DetachKeys: instance.config.detachKeys ?? '',
    Pid: session?.pid ?? 0,
  };
}

export function execRoutes(directory: ContainerDirectory, control: ContainerControl, log: ApiLog): Route[] {
  const instances = new Map<string, ExecInstance>();
  const instanceOf = (id: string): ExecInstance => {
    const instance = instances.get(id) ?? [...instances.values()].find((i) => i.id.startsWith(id) && id.length >= 12);
    if (!instance) throw new ApiError(404, `No such exec instance: ${id}`);
    return instance;
  };
  const sessionOf = (instance: ExecInstance) => (instance.sessionId === undefined ? undefined : directory.find(instance.sessionId));

  return [
    {
      method: 'POST',
      path: '/containers/{id}/exec',
      handler: async ({ params, body }): Promise<Reply> => {
        const container = findContainer(directory, params.id!);
        const config = parseExecCreate(container.vm, await readJsonBody(body, 'exec create'));
        if (config.detachKeys !== undefined) parseDetachKeys(config.detachKeys);
        const primary = directory.find(container.vm) ?? container;
        if (primary.state !== 'running') throw new ApiError(409, `Container ${primary.id} is not running`);
        const id = randomBytes(32).toString('hex');
        instances.set(id, { id, config });
        return json(201, { Id: id });
      },
    },
    {
      method: 'POST',
      path: '/exec/{id}/start',
      handler: async ({ params, body }): Promise<Reply> => {
        const instance = instanceOf(params.id!);
        if (instance.sessionId !== undefined) throw new ApiError(409, `Exec command ${instance.id} is already running`);
        const options = (await readJsonBody(body, 'exec start')) as { Detach?: unknown; ConsoleSize?: unknown };
        const detach = options.Detach === true;
        const { config } = instance;
        const sessionId = `exec-${instance.id.slice(0, 24)}`;
        instance.sessionId = sessionId;
        try {
          // The terminal has its size before the process's first byte.
          const size = config.tty ? (consoleSize(options.ConsoleSize) ?? config.consoleSize) : undefined;
          await control.exec(config.containerId, sessionId, execSession(config, detach), size);
        } catch (err) {
          instance.sessionId = undefined;
          throw err;
        }
        if (detach) return { kind: 'full', status: 200, headers: {}, body: '' };
        const attachment = await directory.attach(sessionId, {
          stdin: config.attachStdin,
          stdout: config.attachStdout,
          stderr: config.attachStderr,
          stream: true,
          logs: true,
        });
        const detachKeys = parseDetachKeys(config.detachKeys ?? null);
        return {
          kind: 'hijack',
          contentType: attachment.tty ? RAW_STREAM : MULTIPLEXED_STREAM,
          take: (socket, head) => runAttachSession({ socket, head, attachment, detachKeys, log, label: `exec ${instance.id.slice(0, 12)}` }),
        };
      },
    },
    {
      method: 'GET',
      path: '/exec/{id}/json',
      handler: ({ params }) => {
        const instance = instanceOf(params.id!);
        return json(200, execView(instance, sessionOf(instance)));
      },
    },
    {
      method: 'POST',
      path: '/exec/{id}/resize',
      handler: async ({ params, query }): Promise<Reply> => {
        const instance = instanceOf(params.id!);
        const size = { rows: requiredIntParam(query, 'h', { min: 1, max: 65535 }), cols: requiredIntParam(query, 'w', { min: 1, max: 65535 }) };
        if (instance.sessionId === undefined) instance.config.consoleSize = size;
        else await directory.resize(instance.sessionId, size);
        return { kind: 'full', status: 200, headers: {}, body: '' };
      },
    },
  ];
}
