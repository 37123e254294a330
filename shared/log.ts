/**
 * One-line structured log records on stderr. The guest's stderr is the VM's
 * console, never the serial line that carries SSH, so logging cannot corrupt
 * the protocol.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';
const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Log {
  (level: Level, message: string, fields?: Record<string, unknown>): void;
  child(component: string): Log;
}

export function createLog(component: string, threshold: Level = envLevel(), write = (line: string) => process.stderr.write(line)): Log {
  const log = ((level, message, fields) => {
    if (order[level] < order[threshold]) return;
    const present = Object.entries(fields ?? {}).filter(([, v]) => v !== undefined);
    const extra = present.map(([k, v]) => ` ${k}=${format(v)}`).join('');
    write(`${new Date().toISOString()} ${level.padEnd(5)} ${component}: ${message}${extra}\n`);
  }) as Log;
  log.child = (sub) => createLog(`${component}.${sub}`, threshold, write);
  return log;
}

function format(value: unknown): string {
  if (typeof value === 'string') return /\s/.test(value) ? JSON.stringify(value) : value;
  if (value instanceof Error) return JSON.stringify(value.message);
  return JSON.stringify(value);
}

function envLevel(): Level {
  const level = process.env.TETHER_LOG;
  return level === 'debug' || level === 'info' || level === 'warn' || level === 'error' ? level : 'info';
}
