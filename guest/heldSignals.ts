/**
 * PID 1 ignores a signal it has no handler for, and the guest's own handlers
 * exist only once its bundle has loaded and it has booted: a `docker stop`
 * or an ACPI power button in those first hundred-odd milliseconds would be
 * lost. So this module, imported first by guest/main.ts (and so evaluated
 * before any other module of the bundle), holds TERM, INT and HUP until the
 * guest takes them over.
 */
/**
 * Node starts its inspector (a debugger on 127.0.0.1:9229, in the network
 * namespace the containers share) on SIGUSR1 unless the process listens for
 * it: a container's root could send it and run code in PID 1. So the guest
 * listens from its first module on, and only reports it.
 */
let onInspectorSignal = () => {};
process.on('SIGUSR1', () => onInspectorSignal());

/** What the guest does with a SIGUSR1 from now on (it never starts the inspector). */
export function reportInspectorSignal(report: () => void): void {
  onInspectorSignal = report;
}

const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
type HeldSignal = (typeof SIGNALS)[number];

const held: HeldSignal[] = [];
const hold = (signal: NodeJS.Signals) => void held.push(signal as HeldSignal);
for (const signal of SIGNALS) process.on(signal, hold);

/** Installs the guest's handler for TERM, INT and HUP, and gives it the ones that came first, in order. */
export function takeOverSignals(handler: (signal: HeldSignal) => void): void {
  for (const signal of SIGNALS) {
    process.off(signal, hold);
    process.on(signal, handler);
  }
  for (const signal of held.splice(0)) handler(signal);
}
