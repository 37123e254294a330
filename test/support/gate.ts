import { readdirSync, readFileSync } from 'node:fs';
import { eventually } from './world.ts';

let gates = 0;

/** USR1's bit in /proc/PID/status SigCgt (signal 10, bit 9). */
const USR1_BIT = 1n << 9n;

/**
 * A gate a container's shell waits at until the test opens it. A
 * container sees none of the host's /tmp (the host image hides it), so the
 * test opens the gate with a signal: USR1 to the shell that waits, sent
 * once the shell has its trap (before that, USR1 would end it).
 *
 * @example
 *   const gate = shellGate();
 *   world.sandbox(vm('x', { x: session(['sh', '-c', `${gate.wait}; echo after`]) }));
 *   await gate.open();
 */
export function shellGate(): { wait: string; open: () => Promise<void> } {
  const marker = `tether-gate-${process.pid}-${++gates}`;
  return {
    wait: `trap 'opened=1' USR1; : ${marker}; while [ -z "$opened" ]; do sleep 0.02; done`,
    open: async () => {
      const pids = await eventually(() => {
        const waiting = shellsWaitingAt(marker);
        return waiting.length > 0 && waiting.every(catchesUsr1) ? waiting : undefined;
      }, `a shell waiting at gate ${marker}`);
      for (const pid of pids) process.kill(pid, 'SIGUSR1');
    },
  };
}

/** The host PIDs of the shells (argv[0] sh) whose command line names `marker`. */
function shellsWaitingAt(marker: string): number[] {
  return readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number).filter((pid) => {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return /(^|\/)sh$/.test(argv[0]!) && argv.some((arg) => arg.includes(marker));
    } catch {
      return false;
    }
  });
}

function catchesUsr1(pid: number): boolean {
  try {
    const caught = /^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return caught !== null && (BigInt(`0x${caught[1]}`) & USR1_BIT) !== 0n;
  } catch {
    return false;
  }
}
