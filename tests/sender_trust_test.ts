/**
 * The timing of `createTrustRecheck` (lib/worker/sender_trust.ts), with a fake
 * client and fake events: which trust failures become final, and when. The
 * end-to-end behaviour (a restarted agent, real key queries) is proved in
 * tests/airlock_integration_test.ts and tests/reliability_test.ts.
 * @module
 */

import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import type { MatrixClient, MatrixEvent } from "matrix-js-sdk";
import { CryptoEvent } from "matrix-js-sdk/lib/crypto-api/index.js";
import { createTrustRecheck } from "../lib/worker/sender_trust.ts";

// Long enough that a loaded CI machine does not reach a deadline before the test looks.
const GRACE = 400;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A fake event whose decryption state the test sets. */
interface FakeEvent {
  event: MatrixEvent;
  state: "failed" | "decrypting" | "decrypted";
  attempts: number;
}

function fakeEvent(id: string, sender = "@op:example.org"): FakeEvent {
  const fake: FakeEvent = { state: "failed", attempts: 0, event: undefined as never };
  fake.event = {
    getId: () => id,
    getSender: () => sender,
    isDecryptionFailure: () => fake.state === "failed",
    isBeingDecrypted: () => fake.state === "decrypting",
    attemptDecryption: () => {
      fake.attempts++;
      return Promise.resolve();
    },
  } as unknown as MatrixEvent;
  return fake;
}

/** A recheck on a fake client; `finals` collects the ids it made final. */
function start(graceMs = GRACE) {
  const emitter = new EventEmitter();
  const crypto = { getUserDeviceInfo: () => Promise.resolve(new Map()) };
  const client = Object.assign(emitter, { getCrypto: () => crypto }) as unknown as MatrixClient;
  const finals: string[] = [];
  const recheck = createTrustRecheck(client, (e) => finals.push(e.getId()!), graceMs);
  return { emitter, finals, recheck };
}

Deno.test("trust recheck: a failure that decrypts within the grace period is never final", async () => {
  const { finals, recheck } = start();
  const e = fakeEvent("$a");
  recheck.failed(e.event);
  await sleep(5);
  assert.ok(e.attempts >= 1, "retried once the sender's key query was done");
  e.state = "decrypted";
  recheck.settled("$a");
  await sleep(GRACE * 2);
  assert.deepEqual(finals, []);
  recheck.stop();
});

Deno.test("trust recheck: a failure still failing at the deadline is final once, not before", async () => {
  const { finals, recheck } = start();
  const e = fakeEvent("$b");
  recheck.failed(e.event);
  await sleep(10);
  recheck.failed(e.event); // a retry failed again: the deadline still decides
  assert.deepEqual(finals, [], "final before the grace period ended");
  await sleep(GRACE * 2);
  assert.deepEqual(finals, ["$b"]);
  recheck.stop();
});

Deno.test("trust recheck: a retry in flight at the deadline decides, at once", async () => {
  const { finals, recheck } = start();
  const fails = fakeEvent("$c");
  const clears = fakeEvent("$d");
  recheck.failed(fails.event);
  recheck.failed(clears.event);
  fails.state = clears.state = "decrypting";
  await sleep(GRACE * 2);
  assert.deepEqual(finals, [], "final while a retry was still running");
  fails.state = "failed";
  recheck.failed(fails.event);
  assert.deepEqual(finals, ["$c"], "a retry that failed after the deadline is final at once");
  clears.state = "decrypted";
  recheck.settled("$d");
  await sleep(GRACE * 2);
  assert.deepEqual(finals, ["$c"]);
  recheck.stop();
});

Deno.test("trust recheck: new keys of the sender retry their pending failures, not others'", async () => {
  const { emitter, recheck } = start(GRACE * 10);
  const mine = fakeEvent("$e", "@op:example.org");
  const theirs = fakeEvent("$f", "@other:example.org");
  recheck.failed(mine.event);
  recheck.failed(theirs.event);
  await sleep(5);
  const before = [mine.attempts, theirs.attempts];
  emitter.emit(CryptoEvent.DevicesUpdated, ["@op:example.org"], false);
  emitter.emit(CryptoEvent.UserTrustStatusChanged, "@op:example.org");
  assert.deepEqual([mine.attempts, theirs.attempts], [before[0] + 2, before[1]]);
  recheck.stop();
});

Deno.test("trust recheck: stop cancels pending deadlines and stops listening", async () => {
  const { emitter, finals, recheck } = start();
  const e = fakeEvent("$g");
  recheck.failed(e.event);
  await sleep(5);
  recheck.stop();
  const attempts = e.attempts;
  emitter.emit(CryptoEvent.DevicesUpdated, ["@op:example.org"], false);
  await sleep(GRACE * 2);
  assert.deepEqual(finals, []);
  assert.equal(e.attempts, attempts);
  assert.equal(emitter.listenerCount(CryptoEvent.DevicesUpdated), 0);
  assert.equal(emitter.listenerCount(CryptoEvent.UserTrustStatusChanged), 0);
});
