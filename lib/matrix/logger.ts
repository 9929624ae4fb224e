/**
 * A quiet logger for matrix-js-sdk and the rust crypto: warnings and errors only,
 * one line each, so the agent's own log stays readable under journald.
 * @module
 */

import { type Logger, logger as sdkGlobalLogger } from "matrix-js-sdk/lib/logger.js";

/**
 * Parts of matrix-js-sdk still log through its deprecated global logger at debug
 * level; keep only its warnings and errors.
 */
export function quietSdkGlobalLogger(): void {
  // The exported type hides loglevel's setLevel, which the object has.
  (sdkGlobalLogger as unknown as { setLevel(l: string, persist: boolean): void })
    .setLevel("warn", false);
}

/** Returns a logger that drops trace/debug/info unless `verbose`. */
export function quietLogger(prefix = "sdk", verbose = false): Logger {
  const drop = () => {};
  const line = (level: string) => (...msg: unknown[]) =>
    console.error(
      `${level} ${prefix}: ${msg.map((m) => m instanceof Error ? m.message : String(m)).join(" ")}`,
    );
  const logger: Logger = {
    trace: verbose ? line("trace") : drop,
    debug: verbose ? line("debug") : drop,
    info: verbose ? line("info") : drop,
    warn: line("warn"),
    error: line("error"),
    getChild: (ns: string) => quietLogger(`${prefix}${ns}`, verbose),
  };
  return logger;
}
