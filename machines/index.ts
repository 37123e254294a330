import type { AnyStateMachine } from 'xstate';
import { applianceMachine } from './appliance.ts';
import { applianceLinkMachine } from './applianceLink.ts';
import { connectionMapMachine } from './connectionMap.ts';
import { containerChannelMachine } from './containerChannel.ts';
import { guestMachine } from './guest.ts';
import { handshakeMachine } from './handshake.ts';
import { processSessionMachine } from './processSession.ts';
import { serialBridgeMachine } from './serialBridge.ts';
import { serialLinkMachine } from './serialLink.ts';
import { applianceSessionMachine, guestSessionMachine } from './sshSession.ts';

/**
 * Every machine of tether, by name: what the visualizer draws and what the
 * model checker reports coverage of. A new machine is added here.
 */
export const machines: Record<string, AnyStateMachine> = {
  guest: guestMachine,
  serialLink: serialLinkMachine,
  handshake: handshakeMachine,
  guestSession: guestSessionMachine,
  processSession: processSessionMachine,
  appliance: applianceMachine,
  applianceLink: applianceLinkMachine,
  applianceSession: applianceSessionMachine,
  connectionMap: connectionMapMachine,
  containerChannel: containerChannelMachine,
  serialBridge: serialBridgeMachine,
};
