/**
 * Requests that survive a homeserver outage: one that fails because the server
 * is unreachable, overloaded or rate-limiting is sent again with jittered
 * backoff. Replies use it (a command that finishes while Synapse restarts is
 * still answered), and so does start-up (a host that boots while its homeserver
 * is down waits for it instead of exiting).
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

/** Retry limits, and the sources of time and chance (parameters, so tests need not wait). */
export interface RetryOptions {
  /** Give up after this long (ms); `Infinity` retries until it succeeds or stops. */
  deadlineMs: number;
  /** Stop retrying early (the agent is stopping). */
  stopped: () => boolean;
  log: (msg: string) => void;
  /** What is being done, for the log: "reply to $ev", "whoami at https://hs". */
  what: string;
  /**
   * Longest backoff without a server hint (ms); it doubles from 1 s up to this.
   * @default 30_000
   */
  maxBackoffMs?: number;
  /** Uniform in [0, 1): the jitter. @default Math.random */
  random?: () => number;
  /** The clock, in ms. @default Date.now */
  now?: () => number;
  /** Waits `ms`. @default setTimeout */
  sleep?: (ms: number) => Promise<void>;
}

/** No wait is shorter: a hint of 0 from a still-busy server must not make us spin. */
export const RETRY_FLOOR_MS = 250;
/** The first backoff without a hint. */
export const FIRST_BACKOFF_MS = 1000;

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
 * The wait before the next attempt, in whole ms, given the current `backoffMs`
 * and `r` uniform in [0, 1).
 *
 * With a server hint: at least the hint (and the floor), plus up to a tenth of
 * it (at least 250 ms more), so the replies a rate limit held back do not all
 * return in the same instant and trip it again. Without one: "equal jitter",
 * between half the backoff and all of it, so agents that lost the same
 * homeserver do not come back in step, yet none retries at once.
 */
export function retryDelayMs(e: unknown, backoffMs: number, r: number): number {
  const hint = retryAfterMs(e);
  if (hint !== null) {
    const base = Math.max(RETRY_FLOOR_MS, hint);
    return Math.round(base + r * Math.max(base / 10, RETRY_FLOOR_MS));
  }
  return Math.round(Math.max(RETRY_FLOOR_MS, backoffMs / 2 + r * (backoffMs / 2)));
}

/** Seconds for a log line: `0.25`, `4.1`, `30`. */
export function seconds(ms: number): string {
  return String(Math.round(ms / 10) / 100);
}

/** The failure in a few words for a log line: the message's first line, not a stack. */
function reason(e: unknown): string {
  const message = (e as { message?: unknown } | null)?.message;
  const text = typeof message === "string" ? message : String(e);
  const line = text.split("\n")[0];
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/**
 * Calls `send` until it succeeds, a non-retryable error, the deadline, or a stop.
 * Waits as {@linkcode retryDelayMs} says; the backoff doubles from 1 s to
 * `maxBackoffMs`. Logs one line per failed attempt: what failed, why, when the
 * next try is, and how many there were.
 */
export async function withRetry<T>(send: () => Promise<T>, opts: RetryOptions): Promise<T> {
  const now = opts.now ?? Date.now;
  const random = opts.random ?? Math.random;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const maxBackoff = opts.maxBackoffMs ?? 30_000;
  const deadline = now() + opts.deadlineMs;
  let backoff = Math.min(FIRST_BACKOFF_MS, maxBackoff);
  for (let attempt = 1;; attempt++) {
    try {
      return await send();
    } catch (e) {
      const delay = retryDelayMs(e, backoff, random());
      if (!retryable(e) || now() + delay > deadline || opts.stopped()) throw e;
      opts.log(
        `${opts.what} failed (${reason(e)}); retrying in ${seconds(delay)} s (attempt ${attempt})`,
      );
      await sleep(delay);
      backoff = Math.min(backoff * 2, maxBackoff);
    }
  }
}
