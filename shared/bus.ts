import mittModule, { type Emitter } from 'mitt';

// mitt ships CommonJS whose types declare an ES default export; at run time
// the default import is the function itself.
const mitt = mittModule as unknown as typeof mittModule.default;

/**
 * Domain events that logs, metrics and the live visualizer subscribe to.
 * Assemblies publish; nothing on the bus makes decisions (machines do).
 */
export type DomainEvents = {
  'link.up': { linkId: string; vm: string };
  'link.down': { linkId: string; reason: string };
  'ids.changed': { linkId: string; ids: string[] };
  'session.changed': { sessionId: string; state: string; exitCode?: number };
  'attach.opened': { containerId: string; linkId: string; offset: string };
  'attach.ended': { containerId: string; outcome: string };
};

export type Bus = Emitter<DomainEvents>;

export function createBus(): Bus {
  return mitt<DomainEvents>();
}
