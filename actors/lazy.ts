import { fromCallback, type EventObject } from 'xstate';

/** What fromCallback hands its function; `receive` may be called once. */
type CallbackParams<TEvent extends EventObject, TInput> = Parameters<Parameters<typeof fromCallback<TEvent, TInput>>[0]>[0];
export type CallbackFunction<TEvent extends EventObject, TInput> = (params: CallbackParams<TEvent, TInput>) => (() => void) | void;

/**
 * A callback actor whose code is loaded when the first one starts: the
 * guest init loads what it needs only at the moment it needs it (ssh2 is
 * not needed to start the container's process). Events that arrive while it
 * loads are kept and handed over in order; stopped before it has loaded, it
 * never runs. A load that fails is told to `failed` and tried again by the
 * next actor: this one stays silent, and its parent's timeouts take over.
 */
export function lazyCallback<TEvent extends EventObject, TInput>(
  load: () => Promise<CallbackFunction<TEvent, TInput>>,
  failed: (error: Error) => void,
) {
  let loading: Promise<CallbackFunction<TEvent, TInput>> | undefined;
  return fromCallback<TEvent, TInput>((params) => {
    const early: TEvent[] = [];
    let deliver: (event: TEvent) => void = (event) => void early.push(event);
    let cleanup: (() => void) | void;
    let stopped = false;
    params.receive((event) => deliver(event));
    const loaded = (loading ??= load());
    loaded.then(
      (run) => {
        if (stopped) return;
        try {
          cleanup = run({
            ...params,
            receive: (listener) => {
              deliver = listener;
              for (const event of early.splice(0)) listener(event);
            },
          });
        } catch (err) {
          failed(err as Error);
        }
      },
      (err: Error) => {
        if (loading === loaded) loading = undefined;
        failed(err);
      },
    );
    return () => {
      stopped = true;
      cleanup?.();
    };
  });
}
