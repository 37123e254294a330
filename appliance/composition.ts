import type { AnyActorLogic } from 'xstate';
import { applianceMachine } from '../machines/appliance.ts';
import { applianceLinkMachine } from '../machines/applianceLink.ts';
import { connectionMapMachine } from '../machines/connectionMap.ts';
import { containerChannelMachine } from '../machines/containerChannel.ts';
import { applianceSessionMachine } from '../machines/sshSession.ts';

/**
 * The effects the appliance's machines need: the real ones in the appliance
 * bundle (appliance/assembly.ts, appliance/directory.ts), simulations in the
 * model checker (tools/check/), so both run one composition of the same
 * machines.
 */
export interface ApplianceEffects {
  /** The serial listener (actors/tcp.ts). */
  listener: AnyActorLogic;
  /** One accepted serial connection (actors/tcp.ts). */
  connection: AnyActorLogic;
  /** The SSH client over a handed-off connection (actors/sshClient.ts). */
  client: AnyActorLogic;
  /** The connection map's hands on the live links (actors/links.ts). */
  links: AnyActorLogic;
}

export function composeAppliance(effects: ApplianceEffects) {
  return applianceMachine.provide({
    actors: {
      listener: effects.listener,
      link: applianceLinkMachine.provide({
        actors: {
          connection: effects.connection,
          ssh: applianceSessionMachine.provide({ actors: { client: effects.client } }),
        },
      }),
      connectionMap: connectionMapMachine.provide({ actors: { links: effects.links } }),
    },
  });
}

/** The effects of one attach (a Docker API attach, or the checker's simulated client). */
export interface AttachEffects {
  /** Asks the connection map for the link carrying the container (actors/lookup.ts). */
  lookup: AnyActorLogic;
  /** One SSH attach channel (actors/attachChannel.ts). */
  channel: AnyActorLogic;
  /** The user's end of the stream. */
  user: AnyActorLogic;
}

export function composeAttach(effects: AttachEffects) {
  return containerChannelMachine.provide({ actors: effects });
}
