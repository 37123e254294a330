/**
 * Live objects (streams, ssh2 connections, channels) that actors hand to each
 * other. Machines only ever see the string handle, so their context stays
 * serializable for the model checker and the live visualizer.
 */
export class ResourceTable {
  #next = 0;
  readonly #items = new Map<string, unknown>();

  put(kind: string, item: unknown): string {
    const handle = `${kind}#${++this.#next}`;
    this.#items.set(handle, item);
    return handle;
  }

  get<T>(handle: string): T {
    if (!this.#items.has(handle)) throw new Error(`no live resource with handle ${handle}`);
    return this.#items.get(handle) as T;
  }

  delete(handle: string): void {
    this.#items.delete(handle);
  }
}
