import { parseArgs } from 'node:util';
import { createLog } from '../shared/log.ts';
import { parseAddress, parseSerialAddress } from './address.ts';
import { startAppliance } from './assembly.ts';
import { defaultStateDir } from './trust.ts';

export const DEFAULT_API = 'tcp://127.0.0.1:2375';
export const DEFAULT_SERIAL = 'tcp://127.0.0.1:2377';

export const applianceUsage = `usage: tether appliance [--api tcp://127.0.0.1:2375] [--api unix:///PATH ...] [--serial tcp://127.0.0.1:2377]
                        [--tls-ca FILE --tls-cert FILE --tls-key FILE] [--state DIR] [--attach-timeout MS]`;

/**
 * `tether appliance`: runs the appliance service until SIGINT or SIGTERM.
 * The containerVMs it launched go on running; the next appliance on the
 * same state directory and serial address adopts them.
 */
export async function applianceCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      api: { type: 'string', multiple: true, default: [DEFAULT_API] },
      serial: { type: 'string', default: DEFAULT_SERIAL },
      state: { type: 'string', default: defaultStateDir() },
      'attach-timeout': { type: 'string', default: '10000' },
      'tls-ca': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
    },
  });
  const serial = parseSerialAddress(values.serial!, '--serial');
  const attachTimeoutMs = Number(values['attach-timeout']);
  if (!Number.isInteger(attachTimeoutMs) || attachTimeoutMs <= 0) throw new Error(`--attach-timeout ${values['attach-timeout']}: expected a positive number of milliseconds`);
  const tlsGiven = (['tls-ca', 'tls-cert', 'tls-key'] as const).filter((name) => values[name] !== undefined);
  if (tlsGiven.length > 0 && tlsGiven.length < 3) {
    throw new Error(`--${tlsGiven.join(' and --')} given: TLS needs all three of --tls-ca FILE --tls-cert FILE --tls-key FILE`);
  }
  const tls = tlsGiven.length === 3 ? { ca: values['tls-ca']!, cert: values['tls-cert']!, key: values['tls-key']! } : undefined;
  const log = createLog('appliance');
  const appliance = await startAppliance({ serial, api: values.api!.map((text) => parseAddress(text, '--api')), tls, stateDir: values.state!, attachTimeoutMs, log });
  process.stdout.write(`tether appliance: serial ${appliance.serial}, Docker API ${appliance.apis.join(' and ')}\n`);
  await new Promise<void>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve());
  });
  await appliance.close();
}
