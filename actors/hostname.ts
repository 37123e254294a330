import { fromPromise } from 'xstate';
import { setHostname } from './libc.ts';

/** sethostname(2) in the guest's UTS namespace (the VM's, or the sandbox's own). */
export const hostnameActor = fromPromise<void, { hostname: string }>(async ({ input }) => {
  setHostname(input.hostname);
});
