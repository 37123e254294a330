import { spawn as spawnPty } from '@lydell/node-pty';
import { eventually } from './world.ts';

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** `argv` on a terminal of its own (100×30), as a user types into it; killed at teardown. */
export function onTerminal(t: Teardown, argv: string[], env: Record<string, string>) {
  const cli = spawnPty(argv[0]!, argv.slice(1), { name: 'xterm', cols: 100, rows: 30, env });
  let screen = '';
  cli.onData((data) => (screen += data));
  const exited = new Promise<number>((resolve) => cli.onExit(({ exitCode }) => resolve(exitCode)));
  t.teardown(() => cli.kill('SIGKILL'));
  return {
    type: (keys: string) => cli.write(keys),
    screen: () => screen,
    /** Resolves once `text` is on the screen; fails showing its end. */
    shows: (text: string) =>
      eventually(() => (screen.includes(text) ? true : undefined), `${JSON.stringify(text)} on the terminal`).catch((error: Error) => {
        throw new Error(`${error.message}; it shows ${JSON.stringify(screen.slice(-300))}`);
      }),
    exited,
  };
}
