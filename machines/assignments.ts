/**
 * Which containerVM may speak for which container. A guest is untrusted: its
 * host key names its VM, and the VM may report only the containers and exec
 * sessions the appliance assigned to it (its launcher registered them with
 * its key; an exec the appliance started there). Whatever it says of any
 * other ID is refused: not listed, not routed to, never taken for another
 * VM's container.
 *
 * The table is plain data given to the machines (machines/appliance.ts for
 * the inventory, machines/connectionMap.ts for routing) by the events that
 * carry it: a link's LINK_UP (what the trust store assigned its VM when it
 * connected), LINK_ASSIGNED (what it assigned since, or an exec the
 * appliance starts there) and, in the connection map, ASSIGN.
 */

/** vm → the container and session IDs assigned to it. */
export type Assignments = Record<string, string[]>;

/**
 * The table once `ids` are assigned to containerVM `vm` (its link came up
 * with them, its launcher assigned more since, or the appliance started an
 * exec there). The trust store never assigns an ID to two VMs, so another VM
 * that still holds one of them here holds it from an entry since removed:
 * the newer word wins.
 */
export function withAssigned(table: Assignments, vm: string, ids: readonly string[]): Assignments {
  const next: Assignments = {};
  for (const [other, held] of Object.entries(table)) {
    if (other === vm) continue;
    const kept = held.filter((id) => !ids.includes(id));
    if (kept.length > 0) next[other] = kept;
  }
  next[vm] = [...new Set([...(table[vm] ?? []), ...ids])];
  return next;
}

/** Whether containerVM `vm` may report container `id`. */
export function mayReport(table: Assignments, vm: string, id: string): boolean {
  return table[vm]?.includes(id) ?? false;
}
