/**
 * Test helper process: writes numbered steps into a durable store as fast as it
 * can, each step as two transactions (`a` then `b`, as the rust crypto saves a new
 * Olm session and then the room key it carried), flushes after two steps of
 * three and prints "flushed N", until killed.
 * Usage: deno run -A idb_writer.ts DIR [PASSPHRASE]
 * @module
 */

import { openDurableStore } from "../../lib/store/durable_idb.ts";
import { storeCipher } from "../../lib/store/store_key.ts";

const [dir, pass] = Deno.args;
const store = await openDurableStore(dir, storeCipher(dir, pass ?? null), (e) => {
  console.error(`write failed: ${e}`);
  Deno.exit(70);
});
const req = store.factory.open("crash-test", 1);
req.onupgradeneeded = () => req.result.createObjectStore("items");
await new Promise((r) => req.onsuccess = r);
const db = req.result;
const count = await new Promise<number>((resolve) => {
  const r = db.transaction("items").objectStore("items").count();
  r.onsuccess = () => resolve(r.result);
});
const enc = new TextEncoder();
const put = (key: string, i: number) => {
  const tx = db.transaction("items", "readwrite");
  // A large value makes each write take long enough to be cut by SIGKILL.
  tx.objectStore("items").put({ i, pad: "x".repeat(20_000 + (i % 7) * 1000) }, key);
  return new Promise((r) => tx.oncomplete = r);
};
const key = (part: string, i: number) => `${part}-${String(i).padStart(6, "0")}`;
for (let i = count / 2;; i++) {
  await put(key("a", i), i);
  await put(key("b", i), i);
  // Every third step is left unflushed a little longer, so kills also hit there.
  if (i % 3 !== 0) {
    store.flush();
    Deno.stdout.writeSync(enc.encode(`flushed ${i}\n`));
  }
}
