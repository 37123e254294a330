import { fromPromise } from 'xstate';
import { setInterfaceUp } from './libc.ts';

/**
 * Brings `lo` up: it starts down in a fresh network namespace, and in a VM,
 * and 127.0.0.1 works only once it is up. Addresses and other interfaces
 * are the network configuration's business.
 */
export const loopbackActor = fromPromise<void, void>(async () => {
  setInterfaceUp('lo');
});
