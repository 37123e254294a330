/**
 * `GET /info` (`docker info`, `docker system info`): the appliance as a
 * Docker host, in the fields the CLI prints. Containers are counted as ps
 * lists them; the host's figures (CPUs, memory, kernel) are the appliance
 * machine's, where the sandboxed containerVMs run.
 */
import os from 'node:os';
import { dockerStatus, isListed } from './containerState.ts';
import type { ContainerDirectory } from './directory.ts';
import { json } from './reply.ts';
import type { Route } from './router.ts';
import { GO_ARCH, type BuildInfo } from './system.ts';
import type { ImageStore } from '../images.ts';

export interface InfoOptions {
  readonly build: BuildInfo;
  readonly images?: ImageStore;
  /** The appliance's state directory: Docker's DockerRootDir. */
  readonly stateDir?: string;
}

export function infoRoute(directory: ContainerDirectory, options: InfoOptions): Route {
  return {
    method: 'GET',
    path: '/info',
    handler: async () => {
      const statuses = directory.list().filter(isListed).map(dockerStatus);
      const count = (status: string) => statuses.filter((s) => s === status).length;
      const images = options.images ? (await options.images.list()).length : 0;
      return json(200, {
        ID: '',
        Name: os.hostname(),
        Containers: statuses.length,
        ContainersRunning: count('running'),
        ContainersPaused: 0,
        ContainersStopped: statuses.length - count('running'),
        Images: images,
        // Each container is a containerVM booted from an image's root file system as it lies on disk.
        Driver: 'tether',
        DriverStatus: [['Containers', 'one containerVM each']],
        ServerVersion: options.build.version,
        OperatingSystem: `tether appliance on ${os.type()} ${os.release()}`,
        OSType: 'linux',
        OSVersion: '',
        KernelVersion: os.release(),
        Architecture: GO_ARCH[process.arch] ?? process.arch,
        NCPU: os.availableParallelism(),
        MemTotal: os.totalmem(),
        DockerRootDir: options.stateDir ?? '',
        IndexServerAddress: '',
        RegistryConfig: { IndexConfigs: {}, InsecureRegistryCIDRs: [], Mirrors: [] },
        Plugins: { Volume: [], Network: [], Authorization: null, Log: [] },
        LoggingDriver: 'tether',
        CgroupDriver: 'none',
        CgroupVersion: '',
        Runtimes: { tether: { path: 'tether sandbox' } },
        DefaultRuntime: 'tether',
        Swarm: { LocalNodeState: 'inactive', NodeID: '', NodeAddr: '', ControlAvailable: false, Error: '', RemoteManagers: null },
        SecurityOptions: [],
        Labels: [],
        ExperimentalBuild: false,
        LiveRestoreEnabled: true,
        Isolation: '',
        Warnings: [],
      });
    },
  };
}
