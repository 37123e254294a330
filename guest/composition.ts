import type { AnyActorLogic } from 'xstate';
import { guestMachine } from '../machines/guest.ts';
import { processSessionMachine } from '../machines/processSession.ts';
import { serialLinkMachine } from '../machines/serialLink.ts';
import { guestSessionMachine } from '../machines/sshSession.ts';

/**
 * The effects the guest's machines need: the real ones in the guest bundle
 * (guest/assembly.ts), simulations in the model checker (tools/check/), so
 * both run one composition of the same machines.
 */
export interface GuestEffects {
  /** A process of a session (actors/process.ts). */
  process: AnyActorLogic;
  /** The serial port (actors/serialPort.ts). */
  port: AnyActorLogic;
  /** The SSH server over the handed-off line (actors/sshServer.ts). */
  server: AnyActorLogic;
  /** The sessions' output bytes (actors/outputLog.ts). */
  outputLog: AnyActorLogic;
  /** Kills and reaps what is left once every session has ended (actors/sweeper.ts). */
  sweeper: AnyActorLogic;
}

export function composeGuest(effects: GuestEffects) {
  return guestMachine.provide({
    actors: {
      session: processSessionMachine.provide({ actors: { process: effects.process } }),
      outputLog: effects.outputLog,
      sweeper: effects.sweeper,
      link: serialLinkMachine.provide({
        actors: {
          port: effects.port,
          ssh: guestSessionMachine.provide({ actors: { server: effects.server } }),
        },
      }),
    },
  });
}
