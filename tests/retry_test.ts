import assert from "node:assert/strict";
import { MatrixError } from "matrix-js-sdk";
import { retryable, retryAfterMs, withRetry } from "../lib/matrix/retry.ts";

/** A send that fails with `errors` in turn, then returns "sent"; counts its calls. */
function flaky(errors: unknown[]) {
  const s = {
    calls: 0,
    send: () => {
      s.calls++;
      const e = errors.shift();
      return e === undefined ? Promise.resolve("sent") : Promise.reject(e);
    },
  };
  return s;
}

function options(logs: string[], deadlineMs = 60_000) {
  return { deadlineMs, stopped: () => false, log: (m: string) => logs.push(m), what: "reply" };
}

const limited = (ms?: number) =>
  Object.assign(new Error("Too Many Requests"), {
    errcode: "M_LIMIT_EXCEEDED",
    httpStatus: 429,
    data: ms === undefined ? {} : { retry_after_ms: ms },
  });

Deno.test("retry: a rate-limited send waits as long as the homeserver asks, then succeeds", async () => {
  const logs: string[] = [];
  const s = flaky([limited(400), limited(0)]);
  assert.equal(await withRetry(s.send, options(logs)), "sent");
  assert.equal(s.calls, 3);
  // A hint of 0 still waits the floor, so a busy server cannot make us spin.
  assert.deepEqual(logs.map((l) => l.match(/retrying in (\S+) s/)?.[1]), ["0.4", "0.25"]);
});

Deno.test("retry: without a hint it backs off from 1 s; an error that cannot pass is thrown at once", async () => {
  const logs: string[] = [];
  const s = flaky([{ name: "ConnectionError", message: "refused" }]);
  assert.equal(await withRetry(s.send, options(logs)), "sent");
  assert.match(logs[0], /retrying in 1 s/);
  const forbidden = Object.assign(new Error("Forbidden"), {
    errcode: "M_FORBIDDEN",
    httpStatus: 403,
  });
  const f = flaky([forbidden]);
  await assert.rejects(withRetry(f.send, options([])), /Forbidden/);
  assert.equal(f.calls, 1);
});

Deno.test("retry: a wait that would pass the deadline is not started", async () => {
  const s = flaky([limited(5_000)]);
  await assert.rejects(withRetry(s.send, options([], 1_000)), /Too Many Requests/);
  assert.equal(s.calls, 1);
});

Deno.test("retry: which failures are retried, and the hint's bounds", () => {
  assert.equal(retryable(limited()), true);
  assert.equal(retryable({ httpStatus: 502 }), true);
  assert.equal(retryable({ httpStatus: 404 }), false);
  assert.equal(retryAfterMs(limited(1500)), 1500);
  assert.equal(retryAfterMs(limited(3_600_000)), 60_000);
  assert.equal(retryAfterMs(limited()), null);
  assert.equal(retryAfterMs({ data: { retry_after_ms: "soon" } }), null);
  assert.equal(retryAfterMs(undefined), null);
  const sdk = new MatrixError({ errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 700 }, 429);
  assert.equal(retryAfterMs(sdk), 700);
  const bad = new MatrixError({ errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 0.5 }, 429);
  assert.equal(retryAfterMs(bad), null);
});
