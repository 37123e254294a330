/**
 * A ContainerRecord in the JSON shapes of Docker's `GET /containers/json`
 * and `GET /containers/{id}/json`. Fields tether has no notion of (images,
 * ports, mounts, labels) are present with Docker's empty values, because
 * clients index into them without checking.
 */
import type { CreateConfig } from '../containerStore.ts';
import type { ContainerRecord } from './directory.ts';
import { NO_HOST_SECURITY, type HostSecuritySettings } from './hostSecurity.ts';
import { dockerStatus, exitCodeOf, isRunning, statusText } from './containerState.ts';

/** What a create request asked for, as the container store keeps it: only containers created through the API have them. */
export interface ContainerSettings {
  /** The image as the client named it, and the ID it resolved to. */
  readonly Image: string;
  readonly ImageID: string;
  readonly Config: CreateConfig;
  /** The security fields are absent from records an appliance before them kept. */
  readonly HostConfig: { readonly AutoRemove: boolean } & Partial<HostSecuritySettings>;
}

/** A record as the directory gives it: with its create-time settings when the API created it. */
export type RecordWithSettings = ContainerRecord & { readonly settings?: ContainerSettings };

/** Go's zero time.Time, which Docker prints for "never". */
const NEVER = '0001-01-01T00:00:00Z';

/**
 * Each containerVM configures its own network from inside; the appliance
 * has nothing more specific to say than Docker's "whatever the default is".
 */
const NETWORK_MODE = 'default';

export function listEntry(record: RecordWithSettings, now: number): object {
  return {
    Id: record.id,
    Names: [`/${record.name}`],
    Image: record.settings?.Image ?? '',
    ImageID: record.settings?.ImageID ?? '',
    Command: record.cmd.join(' '),
    Created: Math.floor(Date.parse(record.created) / 1000),
    State: dockerStatus(record),
    Status: statusText(record, now),
    Ports: [],
    Labels: {},
    SizeRw: 0,
    HostConfig: { NetworkMode: NETWORK_MODE },
    NetworkSettings: { Networks: {} },
    Mounts: [],
  };
}

export function inspectView(record: RecordWithSettings): object {
  const running = isRunning(record);
  const settings = record.settings;
  const config = settings?.Config;
  return {
    Id: record.id,
    Created: record.created,
    Path: record.cmd[0] ?? '',
    Args: record.cmd.slice(1),
    State: {
      Status: dockerStatus(record),
      Running: running,
      Paused: false,
      Restarting: false,
      OOMKilled: false,
      Dead: false,
      Pid: running ? (record.pid ?? 0) : 0,
      ExitCode: exitCodeOf(record),
      Error: record.error ?? '',
      StartedAt: record.startedAt ?? NEVER,
      FinishedAt: record.finishedAt ?? NEVER,
    },
    // Docker's top-level Image is the ID the name resolved to; Config.Image is the name as given.
    Image: settings?.ImageID ?? '',
    ResolvConfPath: '',
    HostnamePath: '',
    HostsPath: '',
    LogPath: '',
    Name: `/${record.name}`,
    // Counts restarts by a restart policy, which tether has none of; `docker start` and `docker restart` set it to 0 in Docker too.
    RestartCount: 0,
    Driver: '',
    Platform: 'linux',
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    ExecIDs: null,
    HostConfig: {
      NetworkMode: NETWORK_MODE,
      RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
      AutoRemove: settings?.HostConfig.AutoRemove ?? false,
      ...NO_HOST_SECURITY,
      ...settings?.HostConfig,
      Binds: null,
      PortBindings: {},
      Runtime: 'tether',
    },
    GraphDriver: { Name: '', Data: null },
    Mounts: [],
    Config: {
      Hostname: record.hostname ?? '',
      Domainname: '',
      User: config?.User ?? '',
      AttachStdin: record.openStdin,
      AttachStdout: true,
      AttachStderr: true,
      Tty: record.tty,
      OpenStdin: record.openStdin,
      // A client's EOF on a non-tty attach closes the process's stdin, which is
      // what Docker does for StdinOnce containers.
      StdinOnce: record.openStdin && !record.tty,
      Env: config ? config.Env : null,
      Cmd: record.cmd,
      Image: settings?.Image ?? '',
      Volumes: null,
      WorkingDir: config?.WorkingDir ?? '',
      Entrypoint: null,
      OnBuild: null,
      Labels: {},
      // Docker leaves both out when the create request did not set them.
      ...(config?.StopSignal ? { StopSignal: config.StopSignal } : {}),
      ...(config?.StopTimeout === undefined ? {} : { StopTimeout: config.StopTimeout }),
    },
    NetworkSettings: { SandboxID: '', SandboxKey: '', Ports: {}, Networks: {} },
    // Not Docker's: where the container lives and whether the appliance can
    // reach it (`docker inspect -f '{{.Tether.Link.Detail}}' ID`).
    Tether: {
      VM: record.vm,
      Primary: record.primary,
      Signal: record.signal ?? '',
      Link: { Up: record.link.up, Detail: record.link.detail },
    },
  };
}
