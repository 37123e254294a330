/**
 * A seccomp profile in Docker's JSON format (moby's profiles/seccomp: what
 * `docker run --security-opt seccomp=FILE` sends), checked field by field so
 * that a profile which cannot be applied is refused before a container
 * starts, each problem naming its field. Compiling it into a filter is
 * actors/seccomp.ts's job.
 */
import dockerDefault from './seccomp/default.json' with { type: 'json' };

export const SECCOMP_ACTIONS = [
  'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE',
  'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG',
] as const;
export type SeccompAction = (typeof SECCOMP_ACTIONS)[number];

export const SECCOMP_OPERATORS = [
  'SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ',
] as const;
export type SeccompOperator = (typeof SECCOMP_OPERATORS)[number];

/** A condition on one argument of the call: for SCMP_CMP_MASKED_EQ, `(arg & value) == valueTwo`. */
export interface SeccompArg {
  index: number;
  value: number;
  valueTwo: number;
  op: SeccompOperator;
}

/** When a rule applies: every listed capability held, this machine's architecture listed, at least this kernel ("5.8"). */
export interface SeccompFilter {
  caps?: string[];
  arches?: string[];
  minKernel?: string;
}

export interface SeccompRule {
  names: string[];
  action: SeccompAction;
  errnoRet?: number;
  args: SeccompArg[];
  includes?: SeccompFilter;
  excludes?: SeccompFilter;
}

export interface SeccompProfile {
  defaultAction: SeccompAction;
  defaultErrnoRet?: number;
  /** Libseccomp's architecture names ("SCMP_ARCH_X86_64"), all added to the filter. */
  architectures?: string[];
  /** Per native architecture, the sub-architectures to add beside it. */
  archMap?: { architecture: string; subArchitectures: string[] }[];
  syscalls: SeccompRule[];
}

const ARCH = /^SCMP_ARCH_[A-Z0-9_]+$/;
const KERNEL = /^\d{1,3}\.\d{1,3}$/;
/** Fields Docker's format has that tether does not apply: a user-space notifier, and filter flags. */
const REFUSED = ['listenerPath', 'listenerMetadata', 'flags'];

type Obj = Record<string, unknown>;
const isObject = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);
const show = (x: unknown) => (typeof x === 'string' ? JSON.stringify(x) : Array.isArray(x) ? 'an array' : isObject(x) ? 'an object' : String(x));

/**
 * Checks a profile document; returns it typed (a rule's single `name` made
 * `names`, absent `args` made empty) or the problems, each named under `path`.
 */
export function checkSeccompProfile(path: string, x: unknown): { profile: SeccompProfile } | { problems: string[] } {
  const problems: string[] = [];
  const fail = (at: string, what: string, got: unknown) => void problems.push(`${at}: expected ${what}, got ${show(got)}`);
  const fields = (at: string, o: Obj, allowed: string[]) => {
    for (const key of Object.keys(o)) {
      if (REFUSED.includes(key) && at === path) problems.push(`${at}.${key}: not supported by tether (a seccomp notifier and filter flags are not applied); remove it`);
      else if (!allowed.includes(key)) problems.push(`${at}.${key}: unknown field (expected one of: ${allowed.join(', ')})`);
    }
  };
  const action = (at: string, a: unknown): a is SeccompAction => {
    if ((SECCOMP_ACTIONS as readonly unknown[]).includes(a)) return true;
    fail(at, `one of ${SECCOMP_ACTIONS.join(', ')}${a === 'SCMP_ACT_NOTIFY' ? ' (SCMP_ACT_NOTIFY needs a notifier, which tether has none of)' : ''}`, a);
    return false;
  };
  const uint = (at: string, n: unknown, max: number) => {
    if (typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= max) return true;
    fail(at, `a whole number from 0 to ${max}`, n);
    return false;
  };
  const strings = (at: string, l: unknown, item: (s: string) => boolean, what: string) => {
    if (Array.isArray(l) && l.every((s) => typeof s === 'string' && item(s))) return true;
    fail(at, `an array of ${what}`, l);
    return false;
  };
  const filter = (at: string, f: unknown) => {
    if (!isObject(f)) return fail(at, 'an object', f);
    fields(at, f, ['caps', 'arches', 'minKernel']);
    if (f.caps !== undefined) strings(`${at}.caps`, f.caps, (s) => s.length > 0, 'capability names');
    if (f.arches !== undefined) strings(`${at}.arches`, f.arches, (s) => s.length > 0, 'architecture names');
    if (f.minKernel !== undefined && !(typeof f.minKernel === 'string' && KERNEL.test(f.minKernel))) fail(`${at}.minKernel`, 'a kernel version "MAJOR.MINOR"', f.minKernel);
  };

  if (!isObject(x)) return { problems: [`${path}: expected a seccomp profile object, got ${show(x)}`] };
  const o = x;
  fields(path, o, ['defaultAction', 'defaultErrnoRet', 'architectures', 'archMap', 'syscalls']);
  action(`${path}.defaultAction`, o.defaultAction);
  if (o.defaultErrnoRet !== undefined) uint(`${path}.defaultErrnoRet`, o.defaultErrnoRet, 4095);
  if (o.architectures !== undefined && o.archMap !== undefined) problems.push(`${path}: both architectures and archMap are given; use one`);
  if (o.architectures !== undefined) strings(`${path}.architectures`, o.architectures, (s) => ARCH.test(s), 'architecture names such as "SCMP_ARCH_X86_64"');
  if (o.archMap !== undefined) {
    if (!Array.isArray(o.archMap)) fail(`${path}.archMap`, 'an array', o.archMap);
    else o.archMap.forEach((entry, i) => {
      const at = `${path}.archMap[${i}]`;
      if (!isObject(entry)) return fail(at, 'an object', entry);
      fields(at, entry, ['architecture', 'subArchitectures']);
      if (!(typeof entry.architecture === 'string' && ARCH.test(entry.architecture))) fail(`${at}.architecture`, 'an architecture name such as "SCMP_ARCH_X86_64"', entry.architecture);
      if (entry.subArchitectures !== undefined && entry.subArchitectures !== null) {
        strings(`${at}.subArchitectures`, entry.subArchitectures, (s) => ARCH.test(s), 'architecture names');
      }
    });
  }
  const rules: SeccompRule[] = [];
  if (o.syscalls !== undefined && !Array.isArray(o.syscalls)) fail(`${path}.syscalls`, 'an array', o.syscalls);
  else (o.syscalls as unknown[] | undefined ?? []).forEach((rule, i) => {
    const at = `${path}.syscalls[${i}]`;
    if (!isObject(rule)) return fail(at, 'an object', rule);
    fields(at, rule, ['names', 'name', 'action', 'errnoRet', 'args', 'comment', 'includes', 'excludes']);
    if ((rule.names === undefined) === (rule.name === undefined)) problems.push(`${at}: give either names or name`);
    const names = rule.name !== undefined ? [rule.name] : rule.names;
    const named = strings(`${at}.${rule.name !== undefined ? 'name' : 'names'}`, names, (s) => /^[a-z0-9_]+$/.test(s), 'system call names');
    const acted = action(`${at}.action`, rule.action);
    if (rule.errnoRet !== undefined) uint(`${at}.errnoRet`, rule.errnoRet, 65535);
    if (rule.includes !== undefined) filter(`${at}.includes`, rule.includes);
    if (rule.excludes !== undefined) filter(`${at}.excludes`, rule.excludes);
    const args: SeccompArg[] = [];
    if (rule.args !== undefined && rule.args !== null) {
      if (!Array.isArray(rule.args)) fail(`${at}.args`, 'an array', rule.args);
      else rule.args.forEach((arg, j) => {
        const aat = `${at}.args[${j}]`;
        if (!isObject(arg)) return fail(aat, 'an object', arg);
        fields(aat, arg, ['index', 'value', 'valueTwo', 'op']);
        const ok = [
          uint(`${aat}.index`, arg.index, 5),
          uint(`${aat}.value`, arg.value, Number.MAX_SAFE_INTEGER),
          arg.valueTwo === undefined || uint(`${aat}.valueTwo`, arg.valueTwo, Number.MAX_SAFE_INTEGER),
          (SECCOMP_OPERATORS as readonly unknown[]).includes(arg.op) || (fail(`${aat}.op`, `one of ${SECCOMP_OPERATORS.join(', ')}`, arg.op), false),
        ].every(Boolean);
        if (ok) args.push({ index: arg.index as number, value: arg.value as number, valueTwo: (arg.valueTwo as number | undefined) ?? 0, op: arg.op as SeccompOperator });
      });
    }
    if (named && acted) {
      rules.push({
        names: names as string[],
        action: rule.action as SeccompAction,
        ...(rule.errnoRet === undefined ? {} : { errnoRet: rule.errnoRet as number }),
        args,
        ...(rule.includes === undefined ? {} : { includes: rule.includes as SeccompFilter }),
        ...(rule.excludes === undefined ? {} : { excludes: rule.excludes as SeccompFilter }),
      });
    }
  });
  if (problems.length > 0) return { problems };
  return {
    profile: {
      defaultAction: o.defaultAction as SeccompAction,
      ...(o.defaultErrnoRet === undefined ? {} : { defaultErrnoRet: o.defaultErrnoRet as number }),
      ...(o.architectures === undefined ? {} : { architectures: o.architectures as string[] }),
      ...(o.archMap === undefined ? {} : {
        archMap: (o.archMap as Obj[]).map((e) => ({ architecture: e.architecture as string, subArchitectures: (e.subArchitectures as string[] | null) ?? [] })),
      }),
      syscalls: rules,
    },
  };
}

/** What decides which of a profile's rules apply: the container's capabilities, this machine's architecture (Go's name: "amd64", "arm64") and kernel version. */
export interface SeccompTarget {
  caps: readonly string[];
  arch: string;
  kernel: { major: number; minor: number };
}

/**
 * The rules that apply to `target`, as moby's setupSeccomp selects them: a
 * rule is left out when its excludes match (any listed capability held, the
 * architecture listed, the kernel at least minKernel) or its includes do
 * not (a listed capability missing, the architecture not listed, the
 * kernel older than minKernel).
 */
export function applicableRules(profile: SeccompProfile, target: SeccompTarget): SeccompRule[] {
  const atLeast = (version: string) => {
    const [major, minor] = version.split('.').map(Number) as [number, number];
    return target.kernel.major > major || (target.kernel.major === major && target.kernel.minor >= minor);
  };
  const held = (cap: string) => target.caps.includes(cap);
  return profile.syscalls.filter(({ includes, excludes }) => {
    if (excludes?.arches?.includes(target.arch) || excludes?.caps?.some(held) || (excludes?.minKernel !== undefined && atLeast(excludes.minKernel))) return false;
    if (includes?.arches !== undefined && includes.arches.length > 0 && !includes.arches.includes(target.arch)) return false;
    if (includes?.caps !== undefined && !includes.caps.every(held)) return false;
    return includes?.minKernel === undefined || atLeast(includes.minKernel);
  });
}

let defaultProfile: SeccompProfile | undefined;

/** Docker's default profile (shared/seccomp/default.json), checked like any other. */
export function defaultSeccompProfile(): SeccompProfile {
  if (defaultProfile !== undefined) return defaultProfile;
  const checked = checkSeccompProfile('shared/seccomp/default.json', dockerDefault);
  if ('problems' in checked) throw new Error(`Docker's default seccomp profile does not check: ${checked.problems.join('; ')}`);
  return (defaultProfile = checked.profile);
}
