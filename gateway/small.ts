/**
 * Map and Set for the few entries one connection or session holds (its subscriptions, its
 * topics): the first entry is kept inline, a real Map or Set takes over from the second. V8
 * allocates a Map's hash table up front, so an empty Map or Set costs 130-190 bytes; one of these
 * with one entry about 50. Most connections hold one or a few subscriptions, and there are tens of
 * thousands of them per gateway. Insertion order is kept, as in Map and Set.
 */

export class SmallMap<K, V> implements Iterable<[K, V]> {
  private one = false;
  private k: K | undefined = undefined;
  private v: V | undefined = undefined;
  private map: Map<K, V> | null = null;

  get size(): number {
    return this.map ? this.map.size : this.one ? 1 : 0;
  }

  has(key: K): boolean {
    return this.map ? this.map.has(key) : this.one && this.k === key;
  }

  get(key: K): V | undefined {
    if (this.map) return this.map.get(key);
    return this.one && this.k === key ? this.v : undefined;
  }

  set(key: K, value: V): this {
    if (this.map) this.map.set(key, value);
    else if (!this.one || this.k === key) {
      this.one = true;
      this.k = key;
      this.v = value;
    } else {
      this.map = new Map([[this.k as K, this.v as V]]);
      this.map.set(key, value);
      this.drop();
    }
    return this;
  }

  delete(key: K): boolean {
    if (this.map) return this.map.delete(key);
    if (!this.one || this.k !== key) return false;
    this.drop();
    return true;
  }

  clear(): void {
    this.map = null;
    this.drop();
  }

  *keys(): IterableIterator<K> {
    for (const [k] of this) yield k;
  }

  *[Symbol.iterator](): IterableIterator<[K, V]> {
    if (this.map) yield* this.map;
    else if (this.one) yield [this.k as K, this.v as V];
  }

  private drop(): void {
    this.one = false;
    this.k = undefined;
    this.v = undefined;
  }
}

export class SmallSet<T> implements Iterable<T> {
  private one = false;
  private v: T | undefined = undefined;
  private set: Set<T> | null = null;

  constructor(values?: Iterable<T>) {
    if (values) for (const v of values) this.add(v);
  }

  get size(): number {
    return this.set ? this.set.size : this.one ? 1 : 0;
  }

  has(value: T): boolean {
    return this.set ? this.set.has(value) : this.one && this.v === value;
  }

  add(value: T): this {
    if (this.set) this.set.add(value);
    else if (!this.one || this.v === value) {
      this.one = true;
      this.v = value;
    } else {
      this.set = new Set([this.v as T, value]);
      this.one = false;
      this.v = undefined;
    }
    return this;
  }

  delete(value: T): boolean {
    if (this.set) return this.set.delete(value);
    if (!this.one || this.v !== value) return false;
    this.one = false;
    this.v = undefined;
    return true;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    if (this.set) yield* this.set;
    else if (this.one) yield this.v as T;
  }
}
