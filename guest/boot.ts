import { createActor, toPromise } from 'xstate';
import { undumpableActor } from '../actors/dumpable.ts';
import { etcFilesActor } from '../actors/etcFiles.ts';
import { hostnameActor } from '../actors/hostname.ts';
import { loopbackActor } from '../actors/loopback.ts';
import { masksActor } from '../actors/masks.ts';
import {
  devNodesActor, holdActor, mountActor, moveRootActor, overlayActor, pivotRootActor, privatizeActor,
} from '../actors/mounts.ts';
import { preloadActor } from '../actors/preload.ts';
import { sysctlsActor } from '../actors/sysctls.ts';
import { usernsActor } from '../actors/userns.ts';
import { bootMachine, STEP_TITLES, type BootStep, type HeldUserns } from '../machines/boot.ts';
import type { GuestConfig } from '../shared/config.ts';

/** The boot machine with the real effects. */
export const realBoot = bootMachine.provide({
  actors: {
    preload: preloadActor,
    undumpable: undumpableActor,
    privatize: privatizeActor,
    hold: holdActor,
    userns: usernsActor,
    overlay: overlayActor,
    pivotRoot: pivotRootActor,
    moveRoot: moveRootActor,
    mount: mountActor,
    sysctls: sysctlsActor,
    devNodes: devNodesActor,
    masks: masksActor,
    etcFiles: etcFilesActor,
    setHostname: hostnameActor,
    loopbackUp: loopbackActor,
  },
});

export interface BootResult {
  /** The serial device to open from now on (/proc/self/fd/N once the guest holds it). */
  serialDevice: string;
  /** The config document to read again on SIGHUP (through the held directory once the root has changed). */
  configPath: string;
  /** The log directory (/proc/self/fd/N once the guest holds it). */
  logDir: string;
  /** The user namespace the container's processes join; absent: they keep the guest's IDs. */
  userns?: HeldUserns;
  /** What did not work and what the guest goes on without, one line each. */
  warnings: string[];
  /** The boot steps done, in order (none when not PID 1). */
  done: BootStep[];
}

/** An essential boot step failed: the guest cannot run its container. */
export class BootError extends Error {
  readonly step: BootStep;
  readonly warnings: string[];

  constructor(step: BootStep, cause: string, warnings: string[]) {
    super(`boot failed at step "${step}" (${STEP_TITLES[step]}): ${cause}`);
    this.name = 'BootError';
    this.step = step;
    this.warnings = warnings;
  }
}

/**
 * Configures the OS the way a VM's init does (machines/boot.ts), when this
 * process is PID 1; otherwise changes nothing. Resolves with what the guest
 * uses afterwards; rejects with a BootError naming the step that failed.
 *
 * @example
 *   const boot = await bootGuest(config, { sandbox: true, configPath });
 *   for (const w of boot.warnings) log('warn', w);
 *   const guest = assembleGuest({ ...config, serial: { device: boot.serialDevice }, logDir: boot.logDir }, log);
 */
export async function bootGuest(config: GuestConfig, { sandbox, configPath }: { sandbox: boolean; configPath: string }): Promise<BootResult> {
  const actor = createActor(realBoot, {
    input: {
      pid1: process.pid === 1,
      sandbox,
      rootfs: config.rootfs,
      hostname: config.hostname,
      serialDevice: config.serial.device,
      configPath,
      logDir: config.logDir,
      privileged: config.security.privileged,
      devices: config.security.devices,
      hide: config.hide,
      ...(config.security.userns === undefined ? {} : { userns: config.security.userns }),
    },
  });
  const done = toPromise(actor);
  actor.start();
  const output = await done;
  if (!output.booted) throw new BootError(output.step, output.error, output.warnings);
  const { booted: _, ...result } = output;
  return result;
}
