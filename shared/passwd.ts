/**
 * /etc/passwd and /etc/group parsing and the resolution of a Docker-style
 * user spec ("name", "uid", "uid:gid", "name:group") against them, with the
 * rules runc applies, so a container runs as the same user under tether as
 * under Docker. Pure: the caller reads the files (from the container's root).
 */

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Home directory from passwd; "/" when the user has no entry, as runc does. */
  home: string;
  /** Supplementary groups: every group that lists the user's name as a member, but the primary one. */
  groups: number[];
}

const ID = /^\d+$/;
/** (uid_t)-1 means "unchanged" to the kernel, so the largest usable ID is one less. */
const MAX_ID = 2 ** 32 - 2;

/** Entries of a passwd file; malformed lines are skipped, as libc's lookups skip them. */
export function parsePasswd(text: string): PasswdEntry[] {
  const entries: PasswdEntry[] = [];
  for (const f of records(text, 7)) {
    if (ID.test(f[2]!) && ID.test(f[3]!)) entries.push({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]!, shell: f[6]! });
  }
  return entries;
}

/** Entries of a group file; malformed lines are skipped. */
export function parseGroup(text: string): GroupEntry[] {
  const entries: GroupEntry[] = [];
  for (const f of records(text, 4)) {
    if (ID.test(f[2]!)) entries.push({ name: f[0]!, gid: Number(f[2]), members: f[3] === '' ? [] : f[3]!.split(',') });
  }
  return entries;
}

/**
 * Resolves a user spec. A name must exist in passwd; a number need not (the
 * process then gets gid 0 and HOME=/ unless a group is given). The group side,
 * when present, overrides the passwd gid and is a number or a group name.
 * Throws an Error naming what was not found.
 */
export function resolveUser(spec: string, passwd: readonly PasswdEntry[], groups: readonly GroupEntry[]): ResolvedUser {
  const colon = spec.indexOf(':');
  const userPart = colon < 0 ? spec : spec.slice(0, colon);
  const groupPart = colon < 0 ? undefined : spec.slice(colon + 1);
  if (userPart === '' || groupPart === '') throw new Error(`invalid user "${spec}": expected "user" or "user:group"`);

  const entry = ID.test(userPart)
    ? passwd.find((p) => p.uid === Number(userPart))
    : passwd.find((p) => p.name === userPart);
  if (entry === undefined && !ID.test(userPart)) throw new Error(`unable to find user "${userPart}": no matching entry in passwd`);
  const uid = entry?.uid ?? Number(userPart);

  let gid = entry?.gid ?? 0;
  if (groupPart !== undefined) {
    if (ID.test(groupPart)) {
      gid = Number(groupPart);
    } else {
      const group = groups.find((g) => g.name === groupPart);
      if (group === undefined) throw new Error(`unable to find group "${groupPart}": no matching entry in group`);
      gid = group.gid;
    }
  }
  for (const [what, n] of [['uid', uid], ['gid', gid]] as const) {
    if (n > MAX_ID) throw new Error(`invalid user "${spec}": ${what} ${n} is out of range`);
  }
  const name = entry?.name;
  const supplementary = name === undefined ? [] : groups.filter((g) => g.members.includes(name) && g.gid !== gid).map((g) => g.gid);
  return { uid, gid, home: entry?.home || '/', groups: [...new Set(supplementary)] };
}

/** Non-comment lines split on ':', keeping those with exactly `fields` fields. */
function* records(text: string, fields: number): Generator<string[]> {
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length === fields && f[0] !== '') yield f;
  }
}
