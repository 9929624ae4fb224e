/**
 * A durable IndexedDB for Deno: fake-indexeddb as the engine, with the committed
 * read-write transactions of each database kept in memory and written to its
 * journal as one atomic, fsync'd frame by {@linkcode DurableStore.flush}, which
 * the Matrix client calls before every request it sends. At start the snapshot
 * and journal are loaded back and compacted into a new snapshot.
 *
 * Why flush at requests and not at every transaction: the rust crypto splits one
 * step over several transactions (a pre-key message saves its new Olm session at
 * once, the room key it carried later). Written one by one, a SIGKILL between
 * them kept the spent session and lost the key, and the operator's room key was
 * gone for good. Written at requests, a SIGKILL rolls the store back to what the
 * homeserver last heard from us: the to-device message is not yet acknowledged,
 * so it comes again and decrypts again.
 *
 * Why our own layer: Deno has no IndexedDB, fake-indexeddb is memory-only, and the
 * rust crypto keeps its Olm/Megolm state there (matrix-js-sdk issue 4769).
 * @module
 */

import v8 from "node:v8";
import {
  IDBCursor,
  IDBDatabase,
  IDBFactory,
  IDBIndex,
  IDBKeyRange,
  IDBObjectStore,
  IDBTransaction,
} from "fake-indexeddb";
import type { Cipher } from "./cipher.ts";
import {
  applyRecord,
  type DbImage,
  emptyImage,
  type IndexSchema,
  type Op,
  rangeSpec,
  type TxRecord,
} from "./idb_image.ts";
import { type Journal, openJournal, readRecords, syncDir, writeSnapshot } from "./record_file.ts";

/** Journal size above which it is folded into a new snapshot. */
const COMPACT_BYTES = 4 << 20;

/** A database kept on disk: its image, journal and uncommitted ops per transaction. */
interface Tracker {
  image: DbImage;
  journal: Journal;
  snapPath: string;
  pending: WeakMap<object, Op[]>;
  upgradeTx: object | null;
  cipher: Cipher | null;
  /** Committed, not yet on disk: written as one frame at the next flush. */
  unflushed: TxRecord[];
}

/** A durable IndexedDB factory and how to close it. */
export interface DurableStore {
  /** The factory to install as `globalThis.indexedDB`. */
  factory: IDBFactory;
  /** Directory holding the `.snap` and `.journal` files. */
  dir: string;
  /**
   * Writes every transaction committed since the last flush, per database as one
   * frame, and fsyncs it. Call it before anything that depends on them leaves the
   * process. A write error goes to `onError`, which does not return.
   */
  flush(): void;
  /** Flushes and closes the journals. The factory must not be used afterwards. */
  close(): void;
}

const connections = new WeakMap<object, Tracker>();
let loading = false;
let patched = false;
let onWriteError: (e: unknown) => never = (e) => {
  throw e;
};

function serialize(value: unknown): Uint8Array {
  return new Uint8Array(v8.serialize(value));
}

function deserialize<T>(bytes: Uint8Array): T {
  return v8.deserialize(bytes) as T;
}

function fileBase(dir: string, name: string): string {
  return `${dir}/${encodeURIComponent(name)}`;
}

function record(tracker: Tracker | undefined, tx: object, op: Op): void {
  if (!tracker || loading) return;
  let ops = tracker.pending.get(tx);
  if (!ops) tracker.pending.set(tx, ops = []);
  ops.push(op);
}

function commit(tracker: Tracker, tx: object, version?: number): void {
  const ops = tracker.pending.get(tx) ?? [];
  tracker.pending.delete(tx);
  if (ops.length === 0 && version === undefined) return;
  tracker.unflushed.push(version === undefined ? { ops } : { version, ops });
}

/** One frame for all of a database's unflushed transactions: a torn write drops them all. */
function flushTracker(tracker: Tracker): void {
  if (tracker.unflushed.length === 0) return;
  const batch = tracker.unflushed;
  tracker.unflushed = [];
  try {
    tracker.journal.append(serialize(batch));
    for (const rec of batch) applyRecord(tracker.image, rec);
    if (tracker.journal.size() > COMPACT_BYTES) {
      writeSnapshot(tracker.snapPath, serialize(tracker.image), tracker.cipher);
      tracker.journal.reset();
    }
  } catch (e) {
    onWriteError(e);
  }
}

/** Applies one journal frame: a batch (an array), or a single record of older journals. */
function applyFrame(image: DbImage, bytes: Uint8Array): void {
  const frame = deserialize<TxRecord | TxRecord[]>(bytes);
  for (const rec of Array.isArray(frame) ? frame : [frame]) applyRecord(image, rec);
}

function watch(tracker: Tracker, tx: IDBTransaction, version?: number): void {
  tx.addEventListener("complete", () => commit(tracker, tx, version));
  tx.addEventListener("abort", () => tracker.pending.delete(tx));
}

/** Hooks the fake-indexeddb prototypes once so writes of tracked databases are seen. */
function patch(): void {
  if (patched) return;
  patched = true;
  const S = IDBObjectStore.prototype;
  const trackerOfStore = (s: IDBObjectStore) => connections.get(s.transaction.db);

  for (const name of ["put", "add"] as const) {
    const orig = S[name];
    S[name] = function (this: IDBObjectStore, value: unknown, key?: IDBValidKey) {
      const t = trackerOfStore(this);
      const bytes = t && !loading ? serialize(value) : null;
      const req = orig.call(this, value, key);
      if (bytes) {
        const store = this.name, tx = this.transaction;
        req.addEventListener("success", () => {
          record(t, tx, { op: "put", store, key: req.result as IDBValidKey, value: bytes });
        });
      }
      return req;
    };
  }
  const origDelete = S.delete;
  S.delete = function (this: IDBObjectStore, query: IDBValidKey | IDBKeyRange) {
    const req = origDelete.call(this, query);
    const t = trackerOfStore(this);
    if (t) {
      const store = this.name, tx = this.transaction;
      const q = query instanceof IDBKeyRange ? rangeSpec(query) : query;
      req.addEventListener("success", () => record(t, tx, { op: "delete", store, query: q }));
    }
    return req;
  };
  const origClear = S.clear;
  S.clear = function (this: IDBObjectStore) {
    const req = origClear.call(this);
    const t = trackerOfStore(this);
    if (t) {
      const store = this.name, tx = this.transaction;
      req.addEventListener("success", () => record(t, tx, { op: "clear", store }));
    }
    return req;
  };
  const origCreateIndex = S.createIndex;
  S.createIndex = function (
    this: IDBObjectStore,
    name: string,
    keyPath: string | string[],
    opts?: IDBIndexParameters,
  ) {
    const idx = origCreateIndex.call(this, name, keyPath, opts);
    const index: IndexSchema = {
      name,
      keyPath,
      unique: !!opts?.unique,
      multiEntry: !!opts?.multiEntry,
    };
    record(trackerOfStore(this), this.transaction, { op: "createIndex", store: this.name, index });
    return idx;
  };
  const origDeleteIndex = S.deleteIndex;
  S.deleteIndex = function (this: IDBObjectStore, name: string) {
    origDeleteIndex.call(this, name);
    record(trackerOfStore(this), this.transaction, { op: "deleteIndex", store: this.name, name });
  };

  const C = IDBCursor.prototype;
  const sourceStore = (c: IDBCursor) =>
    c.source instanceof IDBIndex ? c.source.objectStore : c.source as IDBObjectStore;
  const origUpdate = C.update;
  C.update = function (this: IDBCursor, value: unknown) {
    const s = sourceStore(this);
    const t = trackerOfStore(s);
    const bytes = t ? serialize(value) : null;
    const key = this.primaryKey as IDBValidKey;
    const req = origUpdate.call(this, value);
    if (t && bytes) {
      const store = s.name, tx = s.transaction;
      req.addEventListener("success", () => record(t, tx, { op: "put", store, key, value: bytes }));
    }
    return req;
  };
  const origCursorDelete = C.delete;
  C.delete = function (this: IDBCursor) {
    const s = sourceStore(this);
    const t = trackerOfStore(s);
    const key = this.primaryKey as IDBValidKey;
    const req = origCursorDelete.call(this);
    if (t) {
      const store = s.name, tx = s.transaction;
      req.addEventListener("success", () => record(t, tx, { op: "delete", store, query: key }));
    }
    return req;
  };

  const D = IDBDatabase.prototype;
  const origTransaction = D.transaction;
  D.transaction = function (this: IDBDatabase, ...args: Parameters<IDBDatabase["transaction"]>) {
    const tx = origTransaction.apply(this, args);
    const t = connections.get(this);
    if (t && !loading && tx.mode !== "readonly") watch(t, tx);
    return tx;
  };
  const origCreateStore = D.createObjectStore;
  D.createObjectStore = function (
    this: IDBDatabase,
    name: string,
    opts?: IDBObjectStoreParameters,
  ) {
    const s = origCreateStore.call(this, name, opts);
    const t = connections.get(this);
    if (t?.upgradeTx) {
      record(t, t.upgradeTx, {
        op: "createStore",
        store: name,
        keyPath: opts?.keyPath ?? null,
        autoIncrement: !!opts?.autoIncrement,
      });
    }
    return s;
  };
  const origDeleteStore = D.deleteObjectStore;
  D.deleteObjectStore = function (this: IDBDatabase, name: string) {
    origDeleteStore.call(this, name);
    const t = connections.get(this);
    if (t?.upgradeTx) record(t, t.upgradeTx, { op: "deleteStore", store: name });
  };
}

function awaitRequest<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.addEventListener("success", () => resolve(req.result));
    req.addEventListener("error", () => reject(req.error));
  });
}

/** Loads an image into the engine, unjournaled. */
async function load(factory: IDBFactory, image: DbImage): Promise<void> {
  if (image.version === 0) return;
  loading = true;
  try {
    const req = factory.open(image.name, image.version);
    req.addEventListener("upgradeneeded", () => {
      const db = req.result;
      for (const [name, s] of image.stores) {
        const os = db.createObjectStore(name, {
          keyPath: s.keyPath ?? undefined,
          autoIncrement: s.autoIncrement,
        });
        for (const i of s.indexes) {
          os.createIndex(i.name, i.keyPath, { unique: i.unique, multiEntry: i.multiEntry });
        }
        for (const [key, bytes] of s.records.values()) {
          const value = deserialize(bytes);
          if (s.keyPath === null) os.put(value, key);
          else os.put(value);
        }
      }
    });
    const db = await awaitRequest(req);
    db.close();
  } finally {
    loading = false;
  }
}

/**
 * Opens the durable store in `dir` (created 0700 if missing): loads every database
 * found there into a fresh fake-indexeddb factory and compacts its journal.
 * `onError` is called when a write cannot be made durable; it must not return,
 * because going on would acknowledge key material that is not on disk.
 */
export async function openDurableStore(
  dir: string,
  cipher: Cipher | null,
  onError: (e: unknown) => never,
): Promise<DurableStore> {
  onWriteError = onError;
  patch();
  Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const lock = await lockDir(dir);
  const factory = new IDBFactory();
  const trackers = new Map<string, Tracker>();
  const store: DurableStore = {
    factory,
    dir,
    flush() {
      for (const t of trackers.values()) flushTracker(t);
    },
    close() {
      store.flush();
      for (const t of trackers.values()) t.journal.close();
      trackers.clear();
      lock.close();
    },
  };

  const names = new Set<string>();
  for (const e of Deno.readDirSync(dir)) {
    const m = e.name.match(/^(.*)\.(snap|journal)$/);
    if (m) names.add(decodeURIComponent(m[1]));
  }
  for (const name of names) {
    const base = fileBase(dir, name);
    const snap = readRecords(`${base}.snap`, cipher);
    let image = emptyImage(name);
    if (snap.records.length > 0) image = deserialize<DbImage>(snap.records[0]);
    else if (existsNonEmpty(`${base}.snap`)) {
      throw new Error(`crypto store snapshot ${base}.snap is corrupt`);
    }
    const journal = readRecords(`${base}.journal`, cipher);
    for (const r of journal.records) applyFrame(image, r);
    await load(factory, image);
    writeSnapshot(`${base}.snap`, serialize(image), cipher);
    const j = openJournal(`${base}.journal`, 0, cipher);
    trackers.set(name, {
      image,
      journal: j,
      snapPath: `${base}.snap`,
      pending: new WeakMap(),
      upgradeTx: null,
      cipher,
      unflushed: [],
    });
  }
  syncDir(dir);

  const trackerFor = (name: string): Tracker => {
    let t = trackers.get(name);
    if (!t) {
      const base = fileBase(dir, name);
      t = {
        image: emptyImage(name),
        journal: openJournal(`${base}.journal`, 0, cipher),
        snapPath: `${base}.snap`,
        pending: new WeakMap(),
        upgradeTx: null,
        cipher,
        unflushed: [],
      };
      trackers.set(name, t);
      syncDir(dir);
    }
    return t;
  };

  const origOpen = factory.open.bind(factory);
  factory.open = (name: string, version?: number) => {
    const req = origOpen(name, version);
    if (loading) return req;
    req.addEventListener("upgradeneeded", (ev) => {
      const t = trackerFor(name);
      const tx = req.transaction!;
      connections.set(req.result, t);
      t.upgradeTx = tx;
      const newVersion = (ev as IDBVersionChangeEvent).newVersion ?? undefined;
      tx.addEventListener("complete", () => {
        t.upgradeTx = null;
        commit(t, tx, newVersion);
      });
      tx.addEventListener("abort", () => {
        t.upgradeTx = null;
        t.pending.delete(tx);
      });
    });
    req.addEventListener("success", () => connections.set(req.result, trackerFor(name)));
    return req;
  };
  const origDeleteDb = factory.deleteDatabase.bind(factory);
  factory.deleteDatabase = (name: string) => {
    const req = origDeleteDb(name);
    req.addEventListener("success", () => {
      const t = trackers.get(name);
      t?.journal.close();
      trackers.delete(name);
      for (const ext of ["snap", "journal"]) {
        try {
          Deno.removeSync(`${fileBase(dir, name)}.${ext}`);
        } catch (e) {
          if (!(e instanceof Deno.errors.NotFound)) onWriteError(e);
        }
      }
    });
    return req;
  };
  return store;
}

/**
 * Takes the store's exclusive lock (flock), so a second process cannot open it:
 * opening compacts, which would pull the files from under a running agent.
 */
async function lockDir(dir: string): Promise<Deno.FsFile> {
  const file = await Deno.open(`${dir}/lock`, {
    read: true,
    write: true,
    create: true,
    mode: 0o600,
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const locked = await Promise.race([
    file.lock(true).then(() => true),
    new Promise<false>((r) => timer = setTimeout(() => r(false), 5000)),
  ]);
  clearTimeout(timer);
  if (!locked) {
    file.close();
    throw new Error(
      `the crypto store in ${dir} is in use by another process (is the agent running?)`,
    );
  }
  return file;
}

function existsNonEmpty(path: string): boolean {
  try {
    return Deno.statSync(path).size > 0;
  } catch {
    return false;
  }
}
