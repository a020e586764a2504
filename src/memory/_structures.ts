/**
 * Internal data structures of the memory backend: a FIFO deque and a binary min-heap.
 *
 * @module
 */

/** First in, first out, O(1) amortized at both ends used here. */
export class Deque<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get size(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  unshift(item: T): void {
    if (this.#head > 0) {
      this.#head--;
      this.#items[this.#head] = item;
    } else {
      this.#items.unshift(item);
    }
  }

  /** The items from the front, in order. */
  *values(): IterableIterator<T> {
    for (let i = this.#head; i < this.#items.length; i++) yield this.#items[i] as T;
  }

  /** Keeps only the items `keep` says yes to, in order. */
  retain(keep: (item: T) => boolean): void {
    this.#items = this.#items.slice(this.#head).filter((item) => keep(item as T));
    this.#head = 0;
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head++;
    if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }
}

/** A binary min-heap ordered by `key(item)`, ties broken by insertion order. */
export class MinHeap<T> {
  #items: { key: number; seq: number; item: T }[] = [];
  #seq = 0;

  get size(): number {
    return this.#items.length;
  }

  push(key: number, item: T): void {
    const node = { key, seq: this.#seq++, item };
    const items = this.#items;
    items.push(node);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent]!;
      if (p.key < node.key || (p.key === node.key && p.seq < node.seq)) break;
      items[i] = p;
      i = parent;
    }
    items[i] = node;
  }

  /** Keeps only the items `keep` accepts, in O(n log n): a sorted array is a valid heap. */
  retain(keep: (key: number, item: T) => boolean): void {
    this.#items = this.#items
      .filter((node) => keep(node.key, node.item))
      .sort((a, b) => a.key - b.key || a.seq - b.seq);
  }

  peekKey(): number | undefined {
    return this.#items[0]?.key;
  }

  pop(): T | undefined {
    const items = this.#items;
    const top = items[0];
    if (top === undefined) return undefined;
    const last = items.pop()!;
    if (items.length > 0) {
      let i = 0;
      const n = items.length;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        let c = l;
        const lc = items[l]!;
        if (r < n) {
          const rc = items[r]!;
          if (rc.key < lc.key || (rc.key === lc.key && rc.seq < lc.seq)) c = r;
        }
        const child = items[c]!;
        if (last.key < child.key || (last.key === child.key && last.seq < child.seq)) break;
        items[i] = child;
        i = c;
      }
      items[i] = last;
    }
    return top.item;
  }
}
