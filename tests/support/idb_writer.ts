/**
 * Test helper process: writes numbered transactions into a durable store as fast
 * as it can and prints "committed N" after each completes, until killed.
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
for (let i = count;; i++) {
  const tx = db.transaction("items", "readwrite");
  // A large value makes each write take long enough to be cut by SIGKILL.
  tx.objectStore("items").put({ i, pad: "x".repeat(20_000 + (i % 7) * 1000) }, i);
  await new Promise((r) => tx.oncomplete = r);
  Deno.stdout.writeSync(enc.encode(`committed ${i}\n`));
}
