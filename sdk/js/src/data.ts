// The plugin-private document store (`data` capability), as typed collections of JSON documents.
import * as wit from "linli:platform/data@0.1.0";
import { LinliError, call, knownError, toNumber } from "./errors";
import { allPages } from "./pages";

export interface Versioned<T> {
  key: string;
  value: T;
  version: number;
}

export interface Page<T> {
  items: Versioned<T>[];
  nextCursor?: string;
}

const UPDATE_ATTEMPTS = 16;
/** Page size of `listAll` and `queryAll`. */
const PAGE = 200;

export class Collection<T> {
  readonly name: string;

  constructor(name: string) {
    this.name = name;
  }

  get(key: string): Versioned<T> | undefined {
    const doc = call(() => wit.get(this.name, key));
    return doc ? this.decode(doc) : undefined;
  }

  /** Write unconditionally; the new version. */
  put(key: string, value: T): number {
    return toNumber(call(() => wit.put(this.name, key, JSON.stringify(value), undefined)));
  }

  /** Write only if `key` does not exist yet (otherwise `conflict`). */
  insert(key: string, value: T): number {
    return toNumber(call(() => wit.put(this.name, key, JSON.stringify(value), 0n)));
  }

  /** Write only if the stored version is still `version` (otherwise `conflict`). */
  replace(key: string, value: T, version: number): number {
    return toNumber(call(() => wit.put(this.name, key, JSON.stringify(value), BigInt(version))));
  }

  delete(key: string): boolean {
    return call(() => wit.delete(this.name, key, undefined));
  }

  /** Read, change and write back, retrying when another request wrote in between; a missing document starts as `initial()`. */
  update(key: string, change: (value: T) => T | void, initial: () => T): Versioned<T> {
    return this.swap(key, change, initial);
  }

  /** As `update`, but a missing document is `not-found`. */
  modify(key: string, change: (value: T) => T | void): Versioned<T> {
    return this.swap(key, change, () => {
      throw LinliError.notFound(`\`${this.name}/${key}\` does not exist`);
    });
  }

  private swap(key: string, change: (value: T) => T | void, missing: () => T): Versioned<T> {
    for (let attempt = 0; attempt < UPDATE_ATTEMPTS; attempt++) {
      const current = this.get(key);
      const value = current ? current.value : missing();
      const changed = change(value);
      const next = changed === undefined ? value : changed;
      try {
        const version = toNumber(wit.put(this.name, key, JSON.stringify(next), BigInt(current ? current.version : 0)));
        return { key, value: next, version };
      } catch (e) {
        const payload = (e as { payload?: { code?: string } }).payload;
        if (payload?.code === "conflict") continue;
        throw knownError(e) ?? e;
      }
    }
    throw LinliError.conflict(`\`${this.name}/${key}\` kept changing; gave up after ${UPDATE_ATTEMPTS} attempts`);
  }

  /** Documents whose key starts with `prefix`, in key order, at most `limit` (1..=1000). */
  list(prefix: string, cursor: string | undefined, limit: number): Page<T> {
    return this.decodePage(call(() => wit.list(this.name, prefix, cursor, limit)));
  }

  /** Documents whose indexed top-level `field` equals `value` (declared in `[data.indexes]`). */
  query(field: string, value: unknown, cursor: string | undefined, limit: number): Page<T> {
    return this.decodePage(call(() => wit.query(this.name, field, JSON.stringify(value), cursor, limit)));
  }

  listAll(prefix: string): Versioned<T>[] {
    return allPages((cursor) => this.list(prefix, cursor, PAGE));
  }

  queryAll(field: string, value: unknown): Versioned<T>[] {
    return allPages((cursor) => this.query(field, value, cursor, PAGE));
  }

  private decode(doc: wit.Document): Versioned<T> {
    try {
      return { key: doc.key, value: JSON.parse(doc.value) as T, version: toNumber(doc.version) };
    } catch (e) {
      throw LinliError.internal(`stored document \`${doc.key}\` is not JSON: ${e instanceof Error ? e.message : e}`);
    }
  }

  private decodePage(page: wit.Page): Page<T> {
    return { items: page.items.map((doc) => this.decode(doc)), nextCursor: page.nextCursor };
  }
}
