/**
 * One argument reader for every verb: `--name value`, `--name=value`, flags,
 * positionals and `--help`, so `run`, `doctor`, `trust`, `login`, `audit` and
 * `policy` accept and refuse the same shapes with the same words.
 * @module
 */

import { withEnvFile } from "../config/env_file.ts";

/** A command line that does not fit the verb: printed with its usage, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** What a verb accepts. */
export interface ArgSpec {
  /**
   * Options that take a value (`--env-file FILE` or `--env-file=FILE`).
   * @default {[]}
   */
  values?: readonly string[];
  /**
   * Options without a value, each with optional short aliases (`{"--verbose": ["-v"]}`).
   * @default {{}}
   */
  flags?: Readonly<Record<string, readonly string[]>>;
  /**
   * How many positional arguments the verb takes at most.
   * @default {0}
   */
  positionals?: number;
  /**
   * Options end at the first positional or `--`: it and every word after it are
   * positionals, untouched, so a command line can follow (`policy check ls -l`).
   * @default {false}
   */
  rest?: boolean;
}

/** A parsed command line. */
export interface Args {
  /** `--help` or `-h` was given: print the usage, do nothing else. */
  help: boolean;
  values: Map<string, string>;
  flags: Set<string>;
  positionals: string[];
}

/** Parses `args` against `spec`; throws a UsageError naming the first argument that does not fit. */
export function parseArgs(args: readonly string[], spec: ArgSpec): Args {
  const out: Args = { help: false, values: new Map(), flags: new Set(), positionals: [] };
  const flagOf = new Map<string, string>();
  for (const [flag, aliases] of Object.entries(spec.flags ?? {})) {
    for (const name of [flag, ...aliases]) flagOf.set(name, flag);
  }
  const values = spec.values ?? [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const eq = a.startsWith("--") ? a.indexOf("=") : -1;
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (spec.rest && (a === "--" || !a.startsWith("-") || a === "-")) {
      out.positionals.push(...args.slice(a === "--" ? i + 1 : i));
      break;
    }
    if (a === "--help" || a === "-h") out.help = true;
    else if (values.includes(name)) {
      const v = eq > 0 ? a.slice(eq + 1) : args[++i];
      if (v === undefined || v === "") throw new UsageError(`${name} needs a value`);
      out.values.set(name, v);
    } else if (flagOf.has(a)) out.flags.add(flagOf.get(a)!);
    else if (a.startsWith("-") && a !== "-") throw new UsageError(`unknown argument "${a}"`);
    else if (out.positionals.length < (spec.positionals ?? 0)) out.positionals.push(a);
    else throw new UsageError(`unexpected argument "${a}"`);
  }
  return out;
}

/** The process environment, with `envFile`'s variables over it when one is named. */
export function environment(envFile: string | null | undefined): Record<string, string> {
  const env = Deno.env.toObject();
  return envFile ? withEnvFile(env, envFile) : env;
}
