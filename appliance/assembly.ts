import { randomInt } from 'node:crypto';
import { existsSync, lstatSync, rmSync } from 'node:fs';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createActor, waitFor } from 'xstate';
import { createLinksActor, LinkRegistry } from '../actors/links.ts';
import { ResourceTable } from '../actors/resources.ts';
import { createSshClientActor } from '../actors/sshClient.ts';
import { createTcpConnectionActor, createTcpListenerActor } from '../actors/tcp.ts';
import { createBus, logDomainEvents, publishTo } from '../shared/bus.ts';
import type { Log } from '../shared/log.ts';
import { formatAddress, isLoopback, readTlsFiles, type Address, type TlsFiles } from './address.ts';
import type { ContainerControl, ContainerDirectory } from './api/directory.ts';
import { LiveFeed } from './api/liveFeed.ts';
import { logDirsUnder } from './api/logs.ts';
import { createApiServer } from './api/server.ts';
import { composeAppliance } from './composition.ts';
import { Lifecycle } from './api/lifecycle.ts';
import { ContainerStore } from './containerStore.ts';
import { createDirectory } from './directory.ts';
import { ImageStore } from './images.ts';
import { sandboxLauncher } from './launcher.ts';
import { privateStateDir } from './stateDir.ts';
import { applianceKey, assignToGuest, identifyGuest } from './trust.ts';
import { VERSION } from './version.ts';

export interface ApplianceOptions {
  serial: Address & { kind: 'tcp' };
  /** Where to serve the Docker API: one address or several (TCP and a unix socket, say). */
  api: Address | Address[];
  /** Serve the TCP addresses over TLS, admitting only clients with a certificate from the CA; a non-loopback address needs it. */
  tls?: TlsFiles;
  stateDir: string;
  /** How long an attach, a kill or a stop waits for the link of its container. */
  attachTimeoutMs: number;
  log: Log;
}

export interface RunningAppliance {
  actor: ReturnType<typeof createAppliance>;
  directory: ContainerDirectory & ContainerControl;
  /** The live states `GET /tether/v1/inspect` streams. */
  feed: LiveFeed;
  /** Where it actually listens (port 0 resolved). */
  serial: string;
  /** The first API address, and all of them. */
  api: string;
  apis: string[];
  /** Stops serving; the containerVMs it launched go on running, for the next appliance on this state directory to adopt. */
  close(): Promise<void>;
  /** Stops every containerVM of the API's containers (before close, to tear everything down). */
  stopContainers(): Promise<void>;
}

function createAppliance(options: ApplianceOptions) {
  const resources = new ResourceTable();
  const registry = new LinkRegistry();
  const feed = new LiveFeed();
  const { privateKey } = applianceKey(options.stateDir);
  const client = createSshClientActor({
    resources,
    registry,
    guestStates: feed,
    privateKey,
    identify: (hostKey) => identifyGuest(options.stateDir, hostKey),
    log: options.log.child('ssh'),
  });
  const machine = composeAppliance({
    listener: createTcpListenerActor(resources, { host: options.serial.host, port: options.serial.port }),
    connection: createTcpConnectionActor(resources),
    client,
    links: createLinksActor(registry),
  });
  const bus = createBus();
  logDomainEvents(bus, options.log);
  const actor = createActor(machine, { systemId: 'appliance', inspect: publishTo(bus), input: { seed: randomInt(0, 2 ** 31) } });
  // A guest that speaks for another VM's containers is compromised, or misconfigured: whoever runs the appliance should know.
  actor.on('GUEST_REFUSED', ({ vm, linkId, report, containerIds }) =>
    options.log('warn', `refused what containerVM ${vm} reported of containers not assigned to it`, { vm, link: linkId, report, containers: containerIds.join(' ') }),
  );
  feed.addSystem('appliance', 'appliance', actor);
  return Object.assign(actor, { registry, bus, feed });
}

/** Starts the appliance: the serial listener, the links and the Docker API. */
export async function startAppliance(options: ApplianceOptions): Promise<RunningAppliance> {
  const addresses = [options.api].flat();
  // Whoever reaches the API runs commands in every container: beyond this
  // machine, only clients holding a certificate from our CA may.
  for (const address of addresses) {
    if (address.kind === 'tcp' && !isLoopback(address.host) && !options.tls) {
      throw new Error(
        `refusing to serve the Docker API on ${formatAddress(address)} without TLS: a non-loopback address needs client certificates; pass --tls-ca FILE (the CA that signs client certificates) --tls-cert FILE --tls-key FILE (this server's certificate and key)`,
      );
    }
  }
  const tls = options.tls && readTlsFiles(options.tls);
  // Before anything is written there: the image store, the key and the containers all lie in it.
  const repaired = privateStateDir(options.stateDir);
  if (repaired) options.log('warn', repaired);
  const images = await ImageStore.open(options.stateDir);
  const store = ContainerStore.open(options.stateDir);
  const actor = createAppliance(options);
  actor.start();
  const listening = await waitFor(actor, (s) => s.context.listening !== undefined || s.context.listenError !== undefined);
  if (listening.context.listenError) {
    actor.stop();
    throw new Error(listening.context.listenError);
  }
  const { feed } = actor;
  const reported = createDirectory(actor, {
    registry: actor.registry,
    feed,
    log: options.log.child('attach'),
    attachTimeoutMs: options.attachTimeoutMs,
    created: store,
    assign: (vm, id) => assignToGuest(options.stateDir, vm, id),
  });
  const apiLog = options.log.child('api');
  // The port the listener took (port 0 resolved); the guests dial the host it was given.
  const bound = listening.context.listening!;
  const serialPort = Number(bound.slice(bound.lastIndexOf(':') + 1));
  const lifecycle = new Lifecycle({
    store,
    images,
    launcher: sandboxLauncher({ appliance: { host: options.serial.host, port: serialPort }, stateDir: options.stateDir }),
    directory: reported,
    reported: async (id, signal) =>
      void (await waitFor(
        actor,
        (snapshot) => {
          const entry = snapshot.context.containers[id];
          return entry !== undefined && !store.hides(entry.vm, entry.linkId);
        },
        { signal },
      )),
    reportingLinks: (vm) => [...new Set(Object.values(actor.getSnapshot().context.containers).filter((entry) => entry.vm === vm).map((entry) => entry.linkId))],
    log: (level, message) => apiLog(level, message),
  });
  lifecycle.adopt();
  const { directory } = lifecycle;
  // A unix socket is guarded by its file mode, as dockerd's is: TLS is for TCP.
  const servers = addresses.map((address) =>
    createApiServer(directory, {
      version: VERSION,
      log: (level, message) => apiLog(level, message),
      inspect: feed,
      control: directory,
      logDirOf: logDirsUnder(options.stateDir),
      images,
      lifecycle,
      stateDir: options.stateDir,
      tls: address.kind === 'tcp' ? tls : undefined,
    }),
  );
  // Whatever the clients are doing (an attach, a foreground exec), their
  // connections end and the containerVMs are let go, still running: the
  // serial port is free for the next appliance at once, which adopts them.
  const close = async () => {
    await Promise.all(servers.map((server) => server.shutDown()));
    lifecycle.close();
    actor.stop();
  };
  let apis: string[];
  try {
    apis = await Promise.all(servers.map((server, i) => listen(server, addresses[i]!, options.log)));
  } catch (err) {
    await close();
    throw err;
  }
  options.log('info', 'appliance ready', { serial: `tcp://${listening.context.listening}`, api: apis.join(' ') });
  return { actor, directory, feed, serial: `tcp://${listening.context.listening}`, api: apis[0]!, apis, close, stopContainers: () => lifecycle.stopContainers() };
}

async function listen(server: http.Server, address: Address, log: Log): Promise<string> {
  // A socket left by an earlier run is replaced; any other file is not ours to remove.
  if (address.kind === 'unix' && existsSync(address.path)) {
    if (!lstatSync(address.path).isSocket()) throw new Error(`cannot serve the Docker API on ${formatAddress(address)}: ${address.path} exists and is not a socket`);
    rmSync(address.path);
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`cannot serve the Docker API on ${formatAddress(address)}: ${err.message}`)));
    if (address.kind === 'unix') {
      // The socket is bound inside listen(), under this umask: mode 0660 from
      // its first moment, where a chmod after it would leave a window in
      // which the process's umask decides who may connect.
      const umask = process.umask(0o117);
      try {
        server.listen(address.path, resolve);
      } finally {
        process.umask(umask);
      }
    } else server.listen(address.port, address.host, resolve);
  });
  server.on('error', (err) => log('warn', 'Docker API server error', { error: err }));
  if (address.kind === 'unix') return formatAddress(address);
  const bound = server.address() as AddressInfo;
  return formatAddress({ kind: 'tcp', host: bound.address, port: bound.port });
}
