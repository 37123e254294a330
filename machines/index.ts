import type { AnyStateMachine } from 'xstate';
import { applianceMachine } from './appliance.ts';
import { applianceLinkMachine } from './applianceLink.ts';
import { bootMachine } from './boot.ts';
import { connectionMapMachine } from './connectionMap.ts';
import { containerChannelMachine } from './containerChannel.ts';
import { guestMachine } from './guest.ts';
import { handshakeMachine } from './handshake.ts';
import { processSessionMachine } from './processSession.ts';
import { reaperMachine } from './reaper.ts';
import { serialBridgeMachine } from './serialBridge.ts';
import { serialLinkMachine } from './serialLink.ts';
import { applianceSessionMachine, guestSessionMachine } from './sshSession.ts';

/**
 * Every machine of tether, by name: what the visualizer draws and what the
 * model checker reports coverage of. A new machine is added here.
 */
export const machines: Record<string, AnyStateMachine> = {
  guest: guestMachine,
  boot: bootMachine,
  serialLink: serialLinkMachine,
  handshake: handshakeMachine,
  guestSession: guestSessionMachine,
  processSession: processSessionMachine,
  reaper: reaperMachine,
  appliance: applianceMachine,
  applianceLink: applianceLinkMachine,
  applianceSession: applianceSessionMachine,
  connectionMap: connectionMapMachine,
  containerChannel: containerChannelMachine,
  serialBridge: serialBridgeMachine,
};
