/**
 * `docker exec` as bare Docker API calls, without the docker CLI: exec
 * create, exec start (hijacked, read to its end) and exec inspect, what the
 * CLI sends for `docker exec ID CMD` once it has started and pinged. Timing
 * it beside the CLI splits an exec's time between the client and the host.
 */
import http from 'node:http';

interface Response {
  status: number;
  body: unknown;
}

function request(api: URL, method: string, path: string, body?: unknown): Promise<Response> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(new URL(path, api), { method, headers: payload ? { 'Content-Type': 'application/json' } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, body: text === '' ? undefined : JSON.parse(text) }));
    });
    req.once('error', reject);
    req.end(payload);
  });
}

/** POST /exec/{id}/start upgraded, as the CLI sends it; resolves when the host ends the stream (the process ended). */
function startAndDrain(api: URL, execId: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(`/exec/${execId}/start`, api), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Connection: 'Upgrade', Upgrade: 'tcp' },
    });
    req.once('upgrade', (_res, socket) => {
      socket.once('error', reject);
      socket.once('end', () => {
        socket.destroy();
        resolve();
      });
      socket.resume();
    });
    req.once('response', (res) => reject(new Error(`exec start ${execId}: ${res.statusCode} instead of 101 Switching Protocols`)));
    req.once('error', reject);
    req.end(JSON.stringify({ Detach: false, Tty: false }));
  });
}

/**
 * Runs `cmd` in `container` through the API at `api` (`tcp://HOST:PORT`);
 * fails naming what went wrong unless it ran and exited 0.
 */
export async function apiExec(api: string, container: string, cmd: string[]): Promise<void> {
  const base = new URL(api.replace(/^tcp:/, 'http:'));
  const created = await request(base, 'POST', `/containers/${container}/exec`, { Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const id = (created.body as { Id?: unknown } | undefined)?.Id;
  if (created.status !== 201 || typeof id !== 'string') throw new Error(`exec create in ${container}: ${created.status} ${JSON.stringify(created.body)}`);
  await startAndDrain(base, id);
  const inspected = await request(base, 'GET', `/exec/${id}/json`);
  const exitCode = (inspected.body as { ExitCode?: unknown } | undefined)?.ExitCode;
  if (inspected.status !== 200 || exitCode !== 0) throw new Error(`exec ${cmd.join(' ')} in ${container}: inspect says ${inspected.status} ${JSON.stringify(inspected.body)}`);
}
