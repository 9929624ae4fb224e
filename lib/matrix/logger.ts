/**
 * A quiet logger for matrix-js-sdk and the rust crypto: warnings and errors only,
 * one line each, so the agent's own log stays readable under journald.
 * @module
 */

import { type Logger, logger as sdkGlobalLogger } from "matrix-js-sdk/lib/logger.js";

/** The part of loglevel's logger the SDK's global logger is. */
interface LogLevelLogger {
  methodFactory: MethodFactory;
  setLevel(level: string, persist: boolean): void;
}
type MethodFactory = (
  method: string,
  level: number,
  name: string | symbol,
) => (this: unknown, ...args: unknown[]) => void;

const root = sdkGlobalLogger as unknown as LogLevelLogger;
const sdkFactory = root.methodFactory;
let silenced = false;

/**
 * Parts of matrix-js-sdk still log through its deprecated global logger, and
 * its child loggers (`[MatrixRTCSession …]`) are set to debug level when made;
 * they take their parent's method factory, so filtering there keeps only
 * warnings and errors (nothing when `silent`), for children made later too.
 */
export function quietSdkGlobalLogger(silent = false): void {
  silenced = silent;
  root.methodFactory = (method, level, name) => {
    const log = sdkFactory(method, level, name);
    // A function, not an arrow: the SDK's methods read their prefix from `this`.
    return function (this: unknown, ...args: unknown[]) {
      if (!silenced && (method === "warn" || method === "error")) log.apply(this, args);
    };
  };
  root.setLevel(silent ? "silent" : "warn", false); // rebuilds its methods with the factory
}

/** A logger that prints nothing, for a client whose terminal belongs to a person. */
export function silentLogger(): Logger {
  const drop = () => {};
  const logger: Logger = {
    trace: drop,
    debug: drop,
    info: drop,
    warn: drop,
    error: drop,
    getChild: () => logger,
  };
  return logger;
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
