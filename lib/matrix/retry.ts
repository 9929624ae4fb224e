/**
 * Sending that survives a homeserver outage: a reply that fails because the
 * server is unreachable, overloaded or rate-limiting is sent again with backoff,
 * so a command that finishes while Synapse restarts is still answered.
 * @module
 */

/** True for failures worth retrying: no connection, 5xx, 429 / M_LIMIT_EXCEEDED. */
export function retryable(e: unknown): boolean {
  const err = e as { name?: string; httpStatus?: number; errcode?: string };
  if (err?.name === "ConnectionError") return true;
  if (err?.errcode === "M_LIMIT_EXCEEDED") return true;
  const status = err?.httpStatus ?? 0;
  return status === 429 || status >= 500;
}

/** Retry limits. */
export interface RetryOptions {
  /** Give up after this long (ms). */
  deadlineMs: number;
  /** Stop retrying early (the agent is stopping). */
  stopped: () => boolean;
  log: (msg: string) => void;
  what: string;
}

/**
 * How long a rate-limited homeserver asked us to wait (a `Retry-After` header,
 * or `retry_after_ms` of an M_LIMIT_EXCEEDED error), capped at a minute; null
 * when it did not say.
 */
export function retryAfterMs(e: unknown): number | null {
  const err = e as { getRetryAfterMs?: () => number | null; data?: { retry_after_ms?: unknown } };
  let ms: unknown;
  try {
    ms = err?.getRetryAfterMs?.() ?? err?.data?.retry_after_ms;
  } catch {
    ms = null; // the SDK throws on a malformed hint
  }
  return typeof ms === "number" && Number.isFinite(ms) && ms >= 0 ? Math.min(ms, 60_000) : null;
}

/**
 * Calls `send` until it succeeds, a non-retryable error, the deadline, or a stop.
 * Waits as long as a rate-limiting homeserver asks (at least 0.25 s), else backs
 * off from 1 s to 30 s.
 */
export async function withRetry<T>(send: () => Promise<T>, opts: RetryOptions): Promise<T> {
  const deadline = Date.now() + opts.deadlineMs;
  let backoff = 1000;
  for (;;) {
    try {
      return await send();
    } catch (e) {
      // A floor, so a hint of 0 from a still-busy server cannot spin.
      const delay = Math.max(250, retryAfterMs(e) ?? backoff);
      if (!retryable(e) || Date.now() + delay > deadline || opts.stopped()) throw e;
      opts.log(`${opts.what} not sent (${(e as Error).message}); retrying in ${delay / 1000} s`);
      await new Promise((r) => setTimeout(r, delay));
      backoff = Math.min(backoff * 2, 30_000);
    }
  }
}
