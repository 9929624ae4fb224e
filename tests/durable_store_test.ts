import assert from "node:assert/strict";
import { createClient } from "matrix-js-sdk";
import * as fakeIdb from "fake-indexeddb";
import { type DurableStore, openDurableStore } from "../lib/store/durable_idb.ts";
import { storeCipher } from "../lib/store/store_key.ts";
import { readRecords } from "../lib/store/record_file.ts";
import { flushingFetch } from "../lib/matrix/client.ts";
import { quietLogger, quietSdkGlobalLogger } from "../lib/matrix/logger.ts";

const fail = (e: unknown): never => {
  throw e;
};

function done<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function txDone(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error);
  });
}

async function openDb(store: DurableStore, version = 1): Promise<IDBDatabase> {
  const req = store.factory.open("db", version);
  req.onupgradeneeded = () => {
    const os = req.result.createObjectStore("kv", { keyPath: "id" });
    os.createIndex("by_tag", "tag");
    req.result.createObjectStore("auto", { autoIncrement: true });
  };
  return await done(req);
}

async function all(db: IDBDatabase, name: string): Promise<unknown[]> {
  return await done(db.transaction(name).objectStore(name).getAll());
}

Deno.test("committed writes of every kind survive a reopen; aborted ones do not", async () => {
  const dir = await Deno.makeTempDir();
  let store = await openDurableStore(dir, null, fail);
  let db = await openDb(store);
  let tx = db.transaction(["kv", "auto"], "readwrite");
  const kv = tx.objectStore("kv");
  for (let i = 0; i < 10; i++) {
    kv.put({ id: i, tag: i % 2 ? "odd" : "even", bin: new Uint8Array([i]) });
  }
  tx.objectStore("auto").add({ note: "first" });
  await txDone(tx);
  tx = db.transaction("kv", "readwrite");
  tx.objectStore("kv").delete(3);
  tx.objectStore("kv").delete(fakeIdb.IDBKeyRange.bound(7, 9));
  const cur = tx.objectStore("kv").index("by_tag").openCursor("even");
  cur.onsuccess = () => {
    const c = cur.result;
    if (!c) return;
    if (c.primaryKey === 0) c.delete();
    else c.update({ ...c.value, tag: "EVEN" });
    c.continue();
  };
  await txDone(tx);
  tx = db.transaction("kv", "readwrite");
  tx.objectStore("kv").put({ id: 100, tag: "lost" });
  tx.abort();
  await txDone(tx).catch(() => {});
  db.close();
  store.close();

  store = await openDurableStore(dir, null, fail);
  db = await openDb(store);
  const rows = await all(db, "kv") as { id: number; tag: string; bin: Uint8Array }[];
  assert.deepEqual(rows.map((r) => [r.id, r.tag]), [[1, "odd"], [2, "EVEN"], [4, "EVEN"], [
    5,
    "odd",
  ], [6, "EVEN"]]);
  assert.deepEqual(rows[0].bin, new Uint8Array([1]));
  assert.deepEqual(
    await done(db.transaction("kv").objectStore("kv").index("by_tag").getAllKeys("odd")),
    [1, 5],
  );
  assert.deepEqual(await all(db, "auto"), [{ note: "first" }]);
  db.close();
  store.close();
});

Deno.test("store files are private: dir 0700, files 0600", async () => {
  const dir = `${await Deno.makeTempDir()}/crypto`;
  const store = await openDurableStore(dir, storeCipher(dir, "pw"), fail);
  const db = await openDb(store);
  const tx = db.transaction("kv", "readwrite");
  tx.objectStore("kv").put({ id: 1 });
  await txDone(tx);
  db.close();
  store.close();
  assert.equal((await Deno.stat(dir)).mode! & 0o777, 0o700);
  for await (const e of Deno.readDir(dir)) {
    assert.equal((await Deno.stat(`${dir}/${e.name}`)).mode! & 0o777, 0o600, e.name);
  }
});

Deno.test("a torn journal tail is dropped and the committed prefix kept", async () => {
  const dir = await Deno.makeTempDir();
  let store = await openDurableStore(dir, null, fail);
  let db = await openDb(store);
  for (let i = 0; i < 3; i++) {
    const tx = db.transaction("kv", "readwrite");
    tx.objectStore("kv").put({ id: i });
    await txDone(tx);
    store.flush();
  }
  db.close();
  store.close();
  // Simulate a crash in the middle of an append: half a frame at the end.
  const journal = `${dir}/db.journal`;
  const bytes = await Deno.readFile(journal);
  await Deno.writeFile(journal, bytes.subarray(0, bytes.length - 5));
  store = await openDurableStore(dir, null, fail);
  db = await openDb(store);
  assert.deepEqual(await all(db, "kv"), [{ id: 0 }, { id: 1 }]);
  db.close();
  store.close();
});

Deno.test("SIGKILL at any moment keeps every flushed step and never half a step", async () => {
  const dir = await Deno.makeTempDir();
  const writer = new URL("./support/idb_writer.ts", import.meta.url).pathname;
  let lastFlushed = -1;
  for (let cycle = 0; cycle < 8; cycle++) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", writer, dir, "secret"],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = child.stdout.getReader();
    const dec = new TextDecoder();
    let buf = "";
    const target = 20 + Math.floor(Math.random() * 40);
    let seenThisCycle = 0;
    while (seenThisCycle < target) {
      const { value, done: end } = await reader.read();
      if (end) break;
      buf += dec.decode(value);
      for (const m of buf.matchAll(/flushed (\d+)\n/g)) {
        lastFlushed = Math.max(lastFlushed, Number(m[1]));
        seenThisCycle++;
      }
      buf = buf.slice(buf.lastIndexOf("\n") + 1);
    }
    // Sometimes right away, sometimes in the middle of the next step.
    await new Promise((r) => setTimeout(r, Math.random() * 5));
    child.kill("SIGKILL");
    await child.status;
    reader.releaseLock();
    await child.stdout.cancel().catch(() => {});

    const store = await openDurableStore(dir, storeCipher(dir, "secret"), fail);
    const req = store.factory.open("crash-test", 1);
    const db = await done(req);
    const keys = await done(db.transaction("items").objectStore("items").getAllKeys()) as string[];
    db.close();
    store.close();
    const as = keys.filter((k) => k.startsWith("a-")).map((k) => k.slice(2));
    const bs = keys.filter((k) => k.startsWith("b-")).map((k) => k.slice(2));
    assert.deepEqual(as, bs, `cycle ${cycle}: every step is whole (a without b means a torn step)`);
    assert.ok(
      as.length >= lastFlushed + 1,
      `cycle ${cycle}: flushed ${lastFlushed}, store has ${as.length}`,
    );
    assert.deepEqual(as.map(Number), as.map((_, i) => i), `cycle ${cycle}: steps are contiguous`);
  }
});

Deno.test("nothing reaches the disk before a flush; a flush writes it all as one frame", async () => {
  const dir = await Deno.makeTempDir();
  const store = await openDurableStore(dir, null, fail);
  const db = await openDb(store);
  store.flush();
  const journal = `${dir}/db.journal`;
  const before = await Deno.readFile(journal);
  const framesBefore = readRecords(journal, null).records.length;
  for (let i = 0; i < 3; i++) {
    const tx = db.transaction("kv", "readwrite");
    tx.objectStore("kv").put({ id: i });
    await txDone(tx);
  }
  assert.deepEqual(await Deno.readFile(journal), before, "committed but unflushed: not on disk");
  store.flush();
  assert.equal(readRecords(journal, null).records.length - framesBefore, 1, "one frame");
  db.close();
  store.close();
});

Deno.test("the Matrix client's fetch makes the store durable before the request leaves", async () => {
  const dir = await Deno.makeTempDir();
  const store = await openDurableStore(dir, null, fail);
  const db = await openDb(store);
  store.flush();
  const tx = db.transaction("kv", "readwrite");
  tx.objectStore("kv").put({ id: "sent-with-the-request" });
  await txDone(tx);
  const journal = `${dir}/db.journal`;
  const size = (await Deno.stat(journal)).size;
  let sizeWhenServed = -1;
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, () => {
    sizeWhenServed = Deno.statSync(journal).size;
    return new Response("ok");
  });
  try {
    const res = await flushingFetch(store)(`http://127.0.0.1:${server.addr.port}/`);
    await res.text();
  } finally {
    await server.shutdown();
  }
  assert.ok(sizeWhenServed > size, "the transaction was on disk when the server saw the request");
  db.close();
  store.close();
});

Deno.test("the passphrase is checked and the store holds no plaintext", async () => {
  const dir = await Deno.makeTempDir();
  const store = await openDurableStore(dir, storeCipher(dir, "correct horse"), fail);
  const db = await openDb(store);
  const tx = db.transaction("kv", "readwrite");
  tx.objectStore("kv").put({ id: "MARKER-5f2b", secret: "MARKER-c0ffee" });
  await txDone(tx);
  db.close();
  store.close();
  for await (const e of Deno.readDir(dir)) {
    const text = new TextDecoder("latin1").decode(await Deno.readFile(`${dir}/${e.name}`));
    assert.ok(!text.includes("MARKER"), `${e.name} holds plaintext`);
  }
  assert.throws(() => storeCipher(dir, "wrong"), /does not open the crypto store/);
  assert.throws(() => storeCipher(dir, null), /is encrypted: set TIBET_NC_STORE_PASSPHRASE/);
  const plainDir = await Deno.makeTempDir();
  const s2 = await openDurableStore(plainDir, null, fail);
  const db2 = await openDb(s2);
  db2.close();
  s2.close();
  assert.throws(() => storeCipher(plainDir, "late"), /created without a passphrase/);
});

Deno.test("rust crypto keeps its device identity keys across a reopen of the durable store", async () => {
  quietSdkGlobalLogger();
  const dir = await Deno.makeTempDir();
  const keysOnce = async () => {
    const store = await openDurableStore(dir, storeCipher(dir, "pw"), fail);
    const { default: _d, indexedDB: _i, ...classes } = fakeIdb;
    Object.assign(globalThis, classes, { indexedDB: store.factory });
    const client = createClient({
      baseUrl: "http://127.0.0.1:9",
      userId: "@durable:localhost",
      deviceId: "DURABLEDEV",
      logger: quietLogger("test", false),
    });
    const silent = console.error;
    console.error = () => {};
    try {
      await client.initRustCrypto();
      const keys = await client.getCrypto()!.getOwnDeviceKeys();
      client.stopClient();
      await new Promise((r) => setTimeout(r, 100));
      return keys;
    } finally {
      console.error = silent;
      store.close();
    }
  };
  const first = await keysOnce();
  const second = await keysOnce();
  assert.deepEqual(second, first);
  for await (const e of Deno.readDir(dir)) {
    const text = new TextDecoder("latin1").decode(await Deno.readFile(`${dir}/${e.name}`));
    assert.ok(
      !text.includes(first.ed25519) && !text.includes("DURABLEDEV"),
      `${e.name} leaks key material`,
    );
  }
});

Deno.test("a second process cannot open a store that is in use", async () => {
  const dir = await Deno.makeTempDir();
  const store = await openDurableStore(dir, null, fail);
  try {
    const probe = `import { openDurableStore } from "${
      new URL("../lib/store/durable_idb.ts", import.meta.url).href
    }";
      try { await openDurableStore(${
      JSON.stringify(dir)
    }, null, (e) => { throw e; }); console.log("opened"); }
      catch (e) { console.log(e.message); }
      Deno.exit(0); // the refused lock request is still pending`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", probe],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    assert.match(new TextDecoder().decode(out.stdout), /is in use by another process/);
  } finally {
    store.close();
  }
});
