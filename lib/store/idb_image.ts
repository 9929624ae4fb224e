/**
 * An in-memory image of one IndexedDB database (schema and records), and the
 * committed-transaction records that change it. The durable store keeps the image
 * beside fake-indexeddb so it can write a snapshot synchronously at any moment.
 * @module
 */

import { IDBKeyRange } from "fake-indexeddb";

/** Schema of an index. */
export interface IndexSchema {
  name: string;
  keyPath: string | string[];
  unique: boolean;
  multiEntry: boolean;
}

/** An object store: schema plus records keyed by their canonical key. */
export interface StoreImage {
  keyPath: string | string[] | null;
  autoIncrement: boolean;
  indexes: IndexSchema[];
  /** canonical key -> [key, structured-clone bytes of the value] */
  records: Map<string, [IDBValidKey, Uint8Array]>;
}

/** One database. */
export interface DbImage {
  name: string;
  version: number;
  stores: Map<string, StoreImage>;
}

/** A key range as plain data, so it survives serialisation. */
export interface RangeSpec {
  range: true;
  lower?: IDBValidKey;
  upper?: IDBValidKey;
  lowerOpen: boolean;
  upperOpen: boolean;
}

/** One change inside a committed transaction. */
export type Op =
  | { op: "put"; store: string; key: IDBValidKey; value: Uint8Array }
  | { op: "delete"; store: string; query: IDBValidKey | RangeSpec }
  | { op: "clear"; store: string }
  | { op: "createStore"; store: string; keyPath: string | string[] | null; autoIncrement: boolean }
  | { op: "deleteStore"; store: string }
  | { op: "createIndex"; store: string; index: IndexSchema }
  | { op: "deleteIndex"; store: string; name: string };

/** A committed transaction: its ops and, for an upgrade, the new version. */
export interface TxRecord {
  version?: number;
  ops: Op[];
}

/** An empty database image. */
export function emptyImage(name: string): DbImage {
  return { name, version: 0, stores: new Map() };
}

/**
 * A string that is equal for equal IndexedDB keys: binary keys compare by bytes
 * whatever view they came in, dates by time, arrays element-wise.
 */
export function canonicalKey(key: unknown): string {
  if (typeof key === "number") return `n${key}`;
  if (typeof key === "string") return `s${JSON.stringify(key)}`;
  if (key instanceof Date) return `d${key.getTime()}`;
  if (Array.isArray(key)) return `a[${key.map(canonicalKey).join(",")}]`;
  if (key instanceof ArrayBuffer || ArrayBuffer.isView(key)) {
    const bytes = key instanceof ArrayBuffer
      ? new Uint8Array(key)
      : new Uint8Array(key.buffer, key.byteOffset, key.byteLength);
    return `b${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
  }
  throw new TypeError(`not an IndexedDB key: ${String(key)}`);
}

function isRange(q: IDBValidKey | RangeSpec): q is RangeSpec {
  return typeof q === "object" && q !== null && !Array.isArray(q) &&
    (q as RangeSpec).range === true;
}

/** Turns a live key range into plain data. */
export function rangeSpec(r: IDBKeyRange): RangeSpec {
  return {
    range: true,
    lower: r.lower,
    upper: r.upper,
    lowerOpen: r.lowerOpen,
    upperOpen: r.upperOpen,
  };
}

function toKeyRange(r: RangeSpec): IDBKeyRange {
  if (r.lower !== undefined && r.upper !== undefined) {
    return IDBKeyRange.bound(r.lower, r.upper, r.lowerOpen, r.upperOpen);
  }
  if (r.lower !== undefined) return IDBKeyRange.lowerBound(r.lower, r.lowerOpen);
  return IDBKeyRange.upperBound(r.upper, r.upperOpen);
}

function store(image: DbImage, name: string): StoreImage {
  const s = image.stores.get(name);
  if (!s) throw new Error(`crypto store journal names unknown object store "${name}"`);
  return s;
}

/** Applies a committed transaction to the image. Re-applying a prefix is harmless. */
export function applyRecord(image: DbImage, rec: TxRecord): void {
  if (rec.version !== undefined) image.version = rec.version;
  for (const op of rec.ops) {
    switch (op.op) {
      case "put":
        store(image, op.store).records.set(canonicalKey(op.key), [op.key, op.value]);
        break;
      case "delete": {
        const s = store(image, op.store);
        if (isRange(op.query)) {
          const r = toKeyRange(op.query);
          for (const [k, [key]] of s.records) if (r.includes(key)) s.records.delete(k);
        } else {
          s.records.delete(canonicalKey(op.query));
        }
        break;
      }
      case "clear":
        store(image, op.store).records.clear();
        break;
      case "createStore":
        image.stores.set(op.store, {
          keyPath: op.keyPath,
          autoIncrement: op.autoIncrement,
          indexes: [],
          records: new Map(),
        });
        break;
      case "deleteStore":
        image.stores.delete(op.store);
        break;
      case "createIndex":
        store(image, op.store).indexes.push(op.index);
        break;
      case "deleteIndex": {
        const s = store(image, op.store);
        s.indexes = s.indexes.filter((i) => i.name !== op.name);
        break;
      }
    }
  }
}
