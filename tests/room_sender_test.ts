import assert from "node:assert/strict";
import type { MatrixClient } from "matrix-js-sdk";
import {
  AllDevicesIsolationMode,
  type DeviceIsolationMode,
  OnlySignedDevicesIsolationMode,
} from "matrix-js-sdk/lib/crypto-api/index.js";
import { roomSender } from "../lib/matrix/room_sender.ts";

// The lock's logic only: a fake crypto that logs what it is asked. The real
// path (an unsigned device reads its refusal and nothing else) is in
// tests/airlock_integration_test.ts.
function fakeClient(failDiscard = false) {
  const log: string[] = [];
  let mode: DeviceIsolationMode = new OnlySignedDevicesIsolationMode();
  const crypto = {
    forceDiscardSession(roomId: string) {
      log.push(`discard ${roomId}`);
      return failDiscard && log.filter((l) => l.startsWith("discard")).length > 1
        ? Promise.reject(new Error("store closed"))
        : Promise.resolve();
    },
    setDeviceIsolationMode(m: DeviceIsolationMode) {
      mode = m;
      log.push(`mode ${m instanceof AllDevicesIsolationMode ? "all" : "signed"}`);
    },
  };
  const client = { getCrypto: () => crypto } as unknown as MatrixClient;
  return { client, log, mode: () => mode };
}

const later = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("room sender: the widened send waits for sends in flight and runs alone", async () => {
  const f = fakeClient();
  const s = roomSender(f.client, new OnlySignedDevicesIsolationMode());
  const send = (name: string, ms: number) => () => {
    f.log.push(`start ${name} (${f.mode() instanceof AllDevicesIsolationMode ? "all" : "signed"})`);
    return later(ms).then(() => {
      f.log.push(`end ${name}`);
      return { event_id: name };
    });
  };
  const a = s.send(send("a", 30));
  const b = s.send(send("b", 10));
  const refusal = s.sendToEveryDevice("!r", send("refusal", 10));
  const c = s.send(send("c", 1)); // asked after the refusal: waits for it
  await Promise.all([a, b, refusal, c]);
  assert.deepEqual(f.log, [
    "start a (signed)",
    "start b (signed)",
    "end b",
    "end a",
    "discard !r",
    "mode all",
    "start refusal (all)",
    "end refusal",
    "mode signed",
    "discard !r",
    "start c (signed)",
    "end c",
  ]);
});

Deno.test("room sender: a session that cannot be discarded stops every later send", async () => {
  const f = fakeClient(true);
  const s = roomSender(f.client, new OnlySignedDevicesIsolationMode());
  const ok = () => Promise.resolve({ event_id: "$x" });
  await assert.rejects(s.sendToEveryDevice("!r", ok), /could not be discarded/);
  await assert.rejects(s.send(ok), /sending nothing more, restart the agent/);
  assert.ok(f.mode() instanceof OnlySignedDevicesIsolationMode, "the usual mode is back");
});
