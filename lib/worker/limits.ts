/**
 * Load limits of the airlock: commands per sender per minute, and commands
 * running at once.
 * @module
 */

/** A sliding-window rate limiter per key. */
export interface RateLimiter {
  /** Counts one use by `key`; false when `key` is over its limit (not counted). */
  take(key: string, now?: number): boolean;
}

/**
 * Allows `perWindow` uses per key in any `windowMs` window.
 * @param windowMs @default 60_000
 */
export function rateLimiter(perWindow: number, windowMs = 60_000): RateLimiter {
  const uses = new Map<string, number[]>();
  return {
    take(key, now = Date.now()) {
      const recent = (uses.get(key) ?? []).filter((t) => now - t < windowMs);
      if (recent.length >= perWindow) {
        uses.set(key, recent);
        return false;
      }
      recent.push(now);
      uses.set(key, recent);
      return true;
    },
  };
}
