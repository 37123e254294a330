import { applianceCommand } from './main.ts';

// The appliance service bundle's entry: `node dist/appliance.cjs [options]`.
// Exits once closed, as the CLI does: what a closed appliance leaves (a timer, a client's half-closed socket) must not keep it.
applianceCommand(process.argv.slice(2)).then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`tether appliance: ${err.message}\n`);
    process.exit(2);
  },
);
