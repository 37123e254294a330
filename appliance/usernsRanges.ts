/**
 * Host IDs for the containers' user namespaces: each container gets 65536
 * of its own, so that no two containers, and no user of the host, share an
 * ID. They are taken from 0x70000000 up to systemd's "foreign" range at
 * 0x7FFE0000: above the ranges systemd gives its users and containers
 * (systemd.io/UIDS-GIDS), below the IDs that turn negative as 32-bit
 * signed numbers. Which range a container has is kept in its guest config,
 * so it keeps it across restarts of the container and of the appliance.
 */
import type { UsernsConfig } from '../shared/security.ts';

export const USERNS_SIZE = 65536;
export const USERNS_FIRST = 0x7000_0000;
const USERNS_END = 0x7ffe_0000;

/** The lowest range not in `taken` (their hostIds); throws when every range is in use. */
export function freeUsernsRange(taken: Iterable<number>): UsernsConfig {
  const used = new Set(taken);
  for (let hostId = USERNS_FIRST; hostId < USERNS_END; hostId += USERNS_SIZE) {
    if (!used.has(hostId)) return { hostId, size: USERNS_SIZE };
  }
  throw new Error(`every one of the ${(USERNS_END - USERNS_FIRST) / USERNS_SIZE} user namespace ranges is taken by a container: remove one, or run with --userns=host`);
}
