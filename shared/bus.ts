import mittModule, { type Emitter } from 'mitt';
import type { AnyActorRef, InspectionEvent } from 'xstate';

// mitt ships CommonJS whose types declare an ES default export; at run time
// the default import is the function itself.
const mitt = mittModule as unknown as typeof mittModule.default;

/**
 * Domain events that logs (and later metrics and the live visualizer)
 * subscribe to. Nothing on the bus makes decisions: the machines already did.
 * The appliance's link events are read off its actor system's inspection
 * stream (cheap there: no output passes through that system); the guest's
 * session changes are read off its snapshots (guest/assembly.ts), since
 * inspecting the guest would cost time on every output chunk.
 */
export type DomainEvents = {
  'link.up': { linkId: string; vm: string };
  'link.down': { linkId: string; reason: string };
  'ids.changed': { linkId: string; ids: string[] };
  'session.changed': { sessionId: string; state: string; exitCode?: number };
};

export type Bus = Emitter<DomainEvents>;

export function createBus(): Bus {
  return mitt<DomainEvents>();
}

/** An xstate `inspect` callback that publishes the link events the appliance receives. */
export function publishTo(bus: Bus): (event: InspectionEvent) => void {
  return (inspection) => {
    if (inspection.type !== '@xstate.event') return;
    const event = inspection.event as { type: string } & Record<string, unknown>;
    // Each link report goes to the appliance and on to the connection map: publish it once.
    const toMap = (inspection.actorRef as AnyActorRef).id === 'connectionMap';
    switch (event.type) {
      case 'LINK_UP':
        if (!toMap) bus.emit('link.up', { linkId: String(event.linkId), vm: String(event.vm) });
        return;
      case 'LINK_DOWN':
        if (!toMap) bus.emit('link.down', { linkId: String(event.linkId), reason: String(event.reason) });
        return;
      case 'LINK_IDS':
        if (!toMap) bus.emit('ids.changed', { linkId: String(event.linkId), ids: event.ids as string[] });
        return;
    }
  };
}

/** Domain events as info lines in the log. */
export function logDomainEvents(bus: Bus, log: (level: 'info', message: string, fields?: Record<string, unknown>) => void): void {
  bus.on('link.up', (e) => log('info', 'link up', e));
  bus.on('link.down', (e) => log('info', 'link down', e));
  bus.on('ids.changed', (e) => log('info', 'container IDs changed', { linkId: e.linkId, ids: e.ids.join(',') }));
  bus.on('session.changed', (e) => log('info', 'session changed', e));
}
