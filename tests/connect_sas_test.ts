/**
 * `tibet-nc connect --verify-emoji`: a new device cross-signed by emoji (SAS)
 * verification with the operator's first session, which holds the identity's
 * keys and signs it. Runs alone, after the parallel files (deno.json `test`):
 * sharing the test process with them, the exchange stalled after the accept.
 * @module
 */

import assert from "node:assert/strict";
import { CryptoEvent } from "matrix-js-sdk/lib/crypto-api/index.js";
import {
  type VerificationRequest,
  VerifierEvent,
} from "matrix-js-sdk/lib/crypto-api/verification.js";
import { startWorld } from "./support/fixture.ts";
import { runMain } from "./support/cli.ts";
import { firstConnectArgs } from "./support/connect.ts";

async function until(ok: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test("connect: a device cross-signed by emoji from another session", async () => {
  const w = await startWorld();
  const state = await Deno.makeTempDir({ prefix: "tibet-nc-connect-sas-" });
  // The operator's first session accepts and confirms, as a person in Element would.
  const seen: string[] = [];
  const onRequest = async (req: VerificationRequest) => {
    seen.push(`request from ${req.otherDeviceId}`);
    await req.accept();
    await until(() => req.verifier !== undefined);
    const verifier = req.verifier!;
    const confirm = () => {
      const sas = verifier.getShowSasCallbacks();
      if (sas) void sas.confirm().then(() => seen.push("confirmed"));
    };
    verifier.on(VerifierEvent.ShowSas, confirm);
    const done = verifier.verify();
    confirm();
    await done;
    seen.push("verified");
  };
  const handler = (req: VerificationRequest) =>
    void onRequest(req).catch((e) => seen.push(`failed: ${e}`));
  w.operator.client.on(CryptoEvent.VerificationRequestReceived, handler);
  try {
    const room = await w.operator.createRoom([w.agentUser.userId]);
    await w.operator.waitForJoin(room, w.agentUser.userId);
    const r = await runMain([
      "connect",
      ...firstConnectArgs(w, room, state),
      "--password-stdin",
      "--verify-emoji",
      "testhost",
      "--",
      "id",
    ], { stdin: `${w.operatorUser.password}\ny\n`, env: { NO_COLOR: "1" } });
    assert.equal(r.code, 0, `${r.stderr}\nthe other session: ${seen.join("; ")}`);
    assert.match(r.stderr, /Compare with the other session/);
    assert.match(r.stderr, /now cross-signed/);
    assert.match(r.stdout, /^uid=/m);
  } finally {
    w.operator.client.off(CryptoEvent.VerificationRequestReceived, handler);
    await w.close();
    await Deno.remove(state, { recursive: true }).catch(() => {});
  }
});
