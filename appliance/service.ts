import { applianceCommand } from './main.ts';

// The appliance service bundle's entry: `node dist/appliance.cjs [options]`.
applianceCommand(process.argv.slice(2)).catch((err: Error) => {
  process.stderr.write(`tether appliance: ${err.message}\n`);
  process.exit(2);
});
