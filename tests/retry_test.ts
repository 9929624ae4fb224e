import assert from "node:assert/strict";
import { MatrixError } from "matrix-js-sdk";
import {
  retryable,
  retryAfterMs,
  retryDelayMs,
  type RetryOptions,
  withRetry,
} from "../lib/matrix/retry.ts";

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

/**
 * Options with a fake clock that `sleep` advances and a fixed jitter `r`: no test
 * waits. `waits` collects every sleep, `logs` every line.
 */
function options(r = 0, extra: Partial<RetryOptions> = {}) {
  let t = 1_000_000;
  const waits: number[] = [];
  const logs: string[] = [];
  const opts: RetryOptions = {
    deadlineMs: 60_000,
    stopped: () => false,
    log: (m) => logs.push(m),
    what: "reply",
    random: () => r,
    now: () => t,
    sleep: (ms) => {
      waits.push(ms);
      t += ms;
      return Promise.resolve();
    },
    ...extra,
  };
  return { opts, waits, logs };
}

const limited = (ms?: number) =>
  Object.assign(new Error("Too Many Requests"), {
    errcode: "M_LIMIT_EXCEEDED",
    httpStatus: 429,
    data: ms === undefined ? {} : { retry_after_ms: ms },
  });
const refused = () => Object.assign(new Error("Connection refused"), { name: "ConnectionError" });

Deno.test("retry: a rate-limited send waits at least as long as the homeserver asks, then succeeds", async () => {
  const { opts, waits, logs } = options(0);
  const s = flaky([limited(400), limited(0)]);
  assert.equal(await withRetry(s.send, opts), "sent");
  assert.equal(s.calls, 3);
  // With no jitter drawn, exactly the hint; a hint of 0 still waits the floor,
  // so a busy server cannot make us spin.
  assert.deepEqual(waits, [400, 250]);
  assert.deepEqual(logs.map((l) => l.match(/retrying in (\S+) s/)?.[1]), ["0.4", "0.25"]);
  assert.equal(
    logs[0],
    "reply failed (Too Many Requests); retrying in 0.4 s (attempt 1)",
  );
});

Deno.test("retry: the wait after a hint gets a little jitter on top, never less than the hint", () => {
  // Up to a tenth of the hint more, and at least 250 ms of spread for short hints.
  assert.equal(retryDelayMs(limited(400), 1000, 0), 400);
  assert.equal(retryDelayMs(limited(400), 1000, 0.5), 525);
  assert.equal(retryDelayMs(limited(400), 1000, 0.999), 650);
  assert.equal(retryDelayMs(limited(10_000), 1000, 0.5), 10_500);
  assert.equal(retryDelayMs(limited(10_000), 1000, 0.999), 10_999);
  assert.equal(retryDelayMs(limited(0), 1000, 0.999), 500);
  // Real randomness spreads replies that the same limit held back.
  const spread = new Set(
    Array.from({ length: 20 }, () => retryDelayMs(limited(1000), 1000, Math.random())),
  );
  assert.ok(spread.size > 10, `only ${spread.size} distinct waits`);
  for (const w of spread) assert.ok(w >= 1000 && w <= 1250, `${w}`); // rounded: 1250 can be drawn
});

Deno.test("retry: without a hint it backs off from 1 s, doubling, with equal jitter, up to the cap", async () => {
  const low = options(0, { maxBackoffMs: 8000 });
  await withRetry(flaky(Array.from({ length: 6 }, refused)).send, low.opts);
  // Half the backoff at the lowest draw...
  assert.deepEqual(low.waits, [500, 1000, 2000, 4000, 4000, 4000]);
  const high = options(0.999, { maxBackoffMs: 8000 });
  await withRetry(flaky(Array.from({ length: 6 }, refused)).send, high.opts);
  // ...all of it at the highest; never past the cap.
  assert.deepEqual(high.waits, [1000, 1999, 3998, 7996, 7996, 7996]);
  assert.equal(high.logs.length, 6);
  assert.match(
    high.logs[5],
    /^reply failed \(Connection refused\); retrying in 8 s \(attempt 6\)$/,
  );
  // The default cap is 30 s.
  const dflt = options(0.999, { deadlineMs: Infinity });
  await withRetry(flaky(Array.from({ length: 8 }, refused)).send, dflt.opts);
  assert.equal(Math.max(...dflt.waits), 29_985);
});

Deno.test("retry: an error that cannot pass is thrown at once", async () => {
  const forbidden = Object.assign(new Error("Forbidden"), {
    errcode: "M_FORBIDDEN",
    httpStatus: 403,
  });
  const { opts, waits } = options();
  const f = flaky([forbidden]);
  await assert.rejects(withRetry(f.send, opts), /Forbidden/);
  assert.equal(f.calls, 1);
  assert.deepEqual(waits, []);
});

Deno.test("retry: a wait that would pass the deadline is not started", async () => {
  const { opts, waits } = options(0, { deadlineMs: 1_000 });
  const s = flaky([limited(5_000)]);
  await assert.rejects(withRetry(s.send, opts), /Too Many Requests/);
  assert.equal(s.calls, 1);
  assert.deepEqual(waits, []);
  // The clock decides: three waits of 0.5, 1 and 2 s fit in 4 s, a fourth does not.
  const clock = options(0, { deadlineMs: 4_000 });
  const c = flaky(Array.from({ length: 10 }, refused));
  await assert.rejects(withRetry(c.send, clock.opts), (e: { message: string }) => {
    assert.equal(e.message, "Connection refused");
    return true;
  });
  assert.deepEqual(clock.waits, [500, 1000, 2000]);
});

Deno.test("retry: with no deadline it tries until it succeeds, or until told to stop", async () => {
  const forever = options(0.5, { deadlineMs: Infinity });
  const s = flaky(Array.from({ length: 40 }, refused));
  assert.equal(await withRetry(s.send, forever.opts), "sent");
  assert.equal(s.calls, 41);
  let stop = false;
  const stopping = options(0, {
    deadlineMs: Infinity,
    stopped: () => stop,
    sleep: () => {
      stop = true;
      return Promise.resolve();
    },
  });
  const t = flaky(Array.from({ length: 40 }, refused));
  await assert.rejects(withRetry(t.send, stopping.opts), /Connection refused/);
  assert.equal(t.calls, 2);
});

Deno.test("retry: which failures are retried, and the hint's bounds", () => {
  assert.equal(retryable(limited()), true);
  assert.equal(retryable({ httpStatus: 502 }), true);
  assert.equal(retryable({ httpStatus: 404 }), false);
  assert.equal(retryable(refused()), true);
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
