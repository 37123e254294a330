export type IntArray = Int32Array | Uint32Array;

/** A typed array that grows: the search keeps millions of numbers (parents, edges) in them. */
export class IntList<A extends IntArray = Int32Array> {
  data: A;
  length = 0;
  readonly #make: new (length: number) => A;

  constructor(make: new (length: number) => A, capacity = 1024) {
    this.#make = make;
    this.data = new make(capacity);
  }

  push(value: number): void {
    if (this.length === this.data.length) {
      const grown = new this.#make(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[this.length++] = value;
  }

  /** A copy of the numbers pushed, exactly as long. */
  array(): A {
    return this.data.slice(0, this.length) as A;
  }
}
