import { createActor, toPromise } from 'xstate';
import { etcFilesActor } from '../actors/etcFiles.ts';
import { hostnameActor } from '../actors/hostname.ts';
import { loopbackActor } from '../actors/loopback.ts';
import {
  bindLogDirActor, devNodesActor, mountActor, moveRootActor, overlayActor, pivotRootActor, privatizeActor,
} from '../actors/mounts.ts';
import { preloadActor } from '../actors/preload.ts';
import { exposeSerialActor, holdSerialActor } from '../actors/serialDevice.ts';
import { bootMachine, STEP_TITLES, type BootStep } from '../machines/boot.ts';
import type { GuestConfig } from '../shared/config.ts';

/** The boot machine with the real effects. */
export const realBoot = bootMachine.provide({
  actors: {
    preload: preloadActor,
    privatize: privatizeActor,
    holdSerial: holdSerialActor,
    overlay: overlayActor,
    bindLogDir: bindLogDirActor,
    pivotRoot: pivotRootActor,
    moveRoot: moveRootActor,
    mount: mountActor,
    devNodes: devNodesActor,
    exposeSerial: exposeSerialActor,
    etcFiles: etcFilesActor,
    setHostname: hostnameActor,
    loopbackUp: loopbackActor,
  },
});

export interface BootResult {
  /** The serial device to open from now on (/dev/ttyS0 for a sandbox's pty). */
  serialDevice: string;
  logDir: string;
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
 *   const boot = await bootGuest(config, { sandbox: true });
 *   for (const w of boot.warnings) log('warn', w);
 *   const guest = assembleGuest({ ...config, serial: { device: boot.serialDevice }, logDir: boot.logDir }, log);
 */
export async function bootGuest(config: GuestConfig, { sandbox }: { sandbox: boolean }): Promise<BootResult> {
  const actor = createActor(realBoot, {
    input: {
      pid1: process.pid === 1,
      sandbox,
      rootfs: config.rootfs,
      hostname: config.hostname,
      serialDevice: config.serial.device,
      logDir: config.logDir,
    },
  });
  const done = toPromise(actor);
  actor.start();
  const output = await done;
  if (!output.booted) throw new BootError(output.step, output.error, output.warnings);
  return { serialDevice: output.serialDevice, logDir: output.logDir, warnings: output.warnings, done: output.done };
}
