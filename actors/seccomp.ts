/**
 * Compiles a seccomp profile (Docker's format, shared/seccompProfile.ts)
 * into the BPF program the kernel runs, with the machine's libseccomp
 * (Debian's libseccomp.so.2) through koffi, as runc does through
 * libseccomp-golang: seccomp_init with the default action, the profile's
 * architectures, one rule per applicable system call (its conditions, its
 * errno), then seccomp_export_bpf. dist/confine installs the program in the
 * child before the command runs.
 *
 * Not done, unlike runc: its patch that answers ENOSYS, not the default
 * action, for system calls newer than any the profile names.
 */
import { closeSync, fstatSync, readSync } from 'node:fs';
import { arch, release } from 'node:os';
import koffi from 'koffi';
import { errnoName, memoryFile } from './libc.ts';
import { applicableRules, type SeccompAction, type SeccompArg, type SeccompOperator, type SeccompProfile } from '../shared/seccompProfile.ts';

const EPERM = 1;
/** The action values of libseccomp's seccomp.h. */
const ACTIONS: Record<SeccompAction, (data: number) => number> = {
  SCMP_ACT_KILL: () => 0x00000000,
  SCMP_ACT_KILL_THREAD: () => 0x00000000,
  SCMP_ACT_KILL_PROCESS: () => 0x80000000,
  SCMP_ACT_TRAP: () => 0x00030000,
  SCMP_ACT_ERRNO: (errno) => (0x00050000 | (errno & 0xffff)) >>> 0,
  SCMP_ACT_TRACE: (message) => (0x7ff00000 | (message & 0xffff)) >>> 0,
  SCMP_ACT_LOG: () => 0x7ffc0000,
  SCMP_ACT_ALLOW: () => 0x7fff0000,
};
const OPERATORS: Record<SeccompOperator, number> = {
  SCMP_CMP_NE: 1, SCMP_CMP_LT: 2, SCMP_CMP_LE: 3, SCMP_CMP_EQ: 4, SCMP_CMP_GE: 5, SCMP_CMP_GT: 6, SCMP_CMP_MASKED_EQ: 7,
};
/** seccomp_syscall_resolve_name's answer for a name no architecture has. */
const NR_SCMP_ERROR = -1;
/** Node's process.arch as Go (and so Docker's profile, `arches`) names it. */
const GO_ARCH: Record<string, string> = {
  x64: 'amd64', arm64: 'arm64', ia32: 'x86', arm: 'arm', riscv64: 'riscv64', s390x: 's390x', ppc64: 'ppc64le', loong64: 'loong64',
};

function bind() {
  const lib = koffi.load('libseccomp.so.2');
  const argCmp = koffi.struct('scmp_arg_cmp', { arg: 'uint32', op: 'int', datum_a: 'uint64', datum_b: 'uint64' });
  return {
    init: lib.func('void *seccomp_init(uint32_t def_action)'),
    release: lib.func('void seccomp_release(void *ctx)'),
    archAdd: lib.func('int seccomp_arch_add(void *ctx, uint32_t arch_token)'),
    archNative: lib.func('uint32_t seccomp_arch_native(void)'),
    archResolve: lib.func('uint32_t seccomp_arch_resolve_name(const char *name)'),
    resolveName: lib.func('int seccomp_syscall_resolve_name(const char *name)'),
    ruleAdd: lib.func('int seccomp_rule_add_array(void *ctx, uint32_t action, int syscall, unsigned int count, const scmp_arg_cmp *args)'),
    exportBpf: lib.func('int seccomp_export_bpf(void *ctx, int fd)'),
    argCmp,
  };
}

let bound: ReturnType<typeof bind> | undefined;
const libseccomp = () => (bound ??= bind());

/**
 * Loads libseccomp and binds its functions now: the guest does so before
 * it leaves its root, since the container's root need not have the library.
 */
export function loadSeccompNow(): void {
  libseccomp();
}

/** libseccomp answers -errno. */
function check(rc: number, call: () => string): number {
  if (rc < 0) throw new Error(`${call()} failed: ${errnoName(-rc)}`);
  return rc;
}

const cache = new Map<string, Buffer>();

/**
 * The BPF program (struct sock_filter[]) for `profile` with the container
 * capabilities `caps`: compiled once per profile and capability set.
 * Throws naming the rule libseccomp refused.
 */
export function compileSeccomp(profile: SeccompProfile, caps: readonly string[]): Buffer {
  const key = JSON.stringify([profile, [...caps].sort()]);
  const cached = cache.get(key);
  if (cached !== undefined) return cached;
  const program = compile(profile, caps);
  cache.set(key, program);
  return program;
}

function compile(profile: SeccompProfile, caps: readonly string[]): Buffer {
  const s = libseccomp();
  const defaultAction = actionValue(profile.defaultAction, profile.defaultErrnoRet);
  const ctx = s.init(defaultAction);
  if (ctx === null) throw new Error(`seccomp_init(${profile.defaultAction}) failed`);
  try {
    for (const name of architectures(profile)) {
      const token = s.archResolve(name.replace(/^SCMP_ARCH_/, '').toLowerCase()) as number;
      if (token === 0) throw new Error(`seccomp profile: architecture ${name} is not known to libseccomp`);
      const rc = s.archAdd(ctx, token) as number;
      if (rc !== -17 /* EEXIST: the native one is there from seccomp_init */) check(rc, () => `seccomp_arch_add(${name})`);
    }
    const [major = 0, minor = 0] = release().split(/[.-]/).map(Number);
    const rules = applicableRules(profile, { caps, arch: GO_ARCH[arch()] ?? arch(), kernel: { major, minor } });
    for (const rule of rules) {
      const action = actionValue(rule.action, rule.errnoRet);
      // libseccomp refuses a rule whose action is the default one; it would change nothing.
      if (action === defaultAction) continue;
      for (const name of rule.names) {
        const nr = s.resolveName(name) as number;
        // A name this machine's architectures lack (another architecture's call): nothing to filter, as in runc.
        if (nr === NR_SCMP_ERROR) continue;
        for (const conditions of conditionSets(rule.args)) {
          check(s.ruleAdd(ctx, action, nr, conditions.length, conditions.length === 0 ? null : conditions.map(argCmp)) as number,
            () => `seccomp profile: rule for ${name} (${rule.action}${conditions.length === 0 ? '' : ` with ${conditions.map(show).join(', ')}`})`);
        }
      }
    }
    return exportProgram(ctx);
  } finally {
    s.release(ctx);
  }
}

/** The architectures to add: the profile's list, or for this machine's native one its archMap entry. */
function architectures(profile: SeccompProfile): string[] {
  if (profile.architectures !== undefined) return profile.architectures;
  const s = libseccomp();
  const native = s.archNative() as number;
  const entry = profile.archMap?.find((e) => s.archResolve(e.architecture.replace(/^SCMP_ARCH_/, '').toLowerCase()) === native);
  return entry === undefined ? [] : [entry.architecture, ...entry.subArchitectures];
}

function actionValue(action: SeccompAction, errnoRet: number | undefined): number {
  return ACTIONS[action](errnoRet ?? EPERM);
}

/**
 * libseccomp joins a rule's conditions with AND but allows one per
 * argument; a rule that names an argument twice becomes one rule per
 * condition, as runc makes it.
 */
function conditionSets(args: SeccompArg[]): SeccompArg[][] {
  const indexes = args.map((a) => a.index);
  return new Set(indexes).size === indexes.length ? [args] : args.map((a) => [a]);
}

function argCmp(a: SeccompArg) {
  return { arg: a.index, op: OPERATORS[a.op], datum_a: a.value, datum_b: a.valueTwo };
}

function show(a: SeccompArg): string {
  return `arg ${a.index} ${a.op} ${a.value}${a.op === 'SCMP_CMP_MASKED_EQ' ? ` ${a.valueTwo}` : ''}`;
}

/** seccomp_export_bpf into a memory file, read back whole. */
function exportProgram(ctx: unknown): Buffer {
  const s = libseccomp();
  const fd = memoryFile('seccomp-bpf');
  try {
    check(s.exportBpf(ctx, fd) as number, () => 'seccomp_export_bpf');
    const program = Buffer.alloc(fstatSync(fd).size);
    let read = 0;
    while (read < program.length) read += readSync(fd, program, read, program.length - read, read);
    return program;
  } finally {
    closeSync(fd);
  }
}
