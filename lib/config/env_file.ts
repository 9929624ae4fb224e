/**
 * The agent's systemd-style env file (`KEY=value` lines): read for `--env-file`,
 * rewritten in place by `login` (other lines kept, secrets never world-readable).
 * @module
 */

import { parse } from "dotenv";
import { ConfigError } from "./config.ts";
import { syncDirOf, writeAllSync } from "../audit/durable_file.ts";

/**
 * Returns the variables of `path` layered over `base` (the file wins, as with
 * systemd's EnvironmentFile=). Throws a ConfigError naming the file on failure.
 */
export function withEnvFile(
  base: Record<string, string>,
  path: string,
): Record<string, string> {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    throw new ConfigError("--env-file", `cannot read ${path}: ${(e as Error).message}`);
  }
  return { ...base, ...parse(systemdHashes(text)) };
}

/**
 * systemd's `EnvironmentFile=` keeps a `#` inside a value (only a line that
 * starts with one is a comment), but dotenv cuts an unquoted value there, so
 * `TIBET_NC_CONNECT_ROOM=#ops:example.org` would read as empty. Such values are
 * quoted first, so both read the same text the same way.
 */
export function systemdHashes(text: string): string {
  return text.split("\n").map((line) => {
    const m = /^(\s*(?:export\s+)?[A-Za-z_][A-Za-z0-9_]*\s*=\s*)([^'"`\s].*)$/.exec(line);
    if (!m || !m[2].includes("#") || m[2].includes("'")) return line;
    return `${m[1]}'${m[2].trimEnd()}'`;
  }).join("\n");
}

// ------------------------------------------------------------------ writing

/**
 * Returns `text` with each `KEY=` line of `values` replaced by the new value
 * (later duplicates dropped) and missing keys appended; other lines unchanged.
 */
export function updateEnvText(text: string, values: Record<string, string>): string {
  const lines = text === "" ? [] : text.replace(/\n$/, "").split("\n");
  const done = new Set<string>();
  const out: string[] = [];
  for (const line of lines) {
    const key = line.match(/^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=/)?.[1];
    if (key === undefined || !Object.hasOwn(values, key)) {
      out.push(line);
    } else if (!done.has(key)) {
      out.push(`${key}=${values[key]}`);
      done.add(key);
    }
  }
  for (const [k, v] of Object.entries(values)) if (!done.has(k)) out.push(`${k}=${v}`);
  return out.join("\n") + "\n";
}

/** An env file as found before it is rewritten: its text and owner. */
export interface EnvFileState {
  text: string;
  uid: number | null;
  gid: number | null;
}

/**
 * Reads an env file that is about to be rewritten; null when it does not exist.
 * Refuses a world-readable one: its secrets may already be known.
 */
export function inspectEnvFile(path: string): EnvFileState | null {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
  if (!info.isFile) throw new Error(`${path} is not a regular file`);
  const mode = (info.mode ?? 0) & 0o777;
  if (mode & 0o004) {
    throw new Error(
      `refusing to use ${path}: it is world-readable (mode 0${mode.toString(8)}), so any local ` +
        `user may already have read the secrets in it; run "chmod 600 ${path}" (and replace ` +
        `any access token or passphrase it holds), then log in again`,
    );
  }
  try {
    return { text: Deno.readTextFileSync(path), uid: info.uid, gid: info.gid };
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
}

/** Fails early, before the password is asked, when the env file's dir is not writable. */
export function probeWritable(envFile: string): void {
  const probe = `${envFile}.tmp-${Deno.pid}`;
  try {
    Deno.openSync(probe, { write: true, createNew: true, mode: 0o600 }).close();
    Deno.removeSync(probe);
  } catch (e) {
    throw new Error(`cannot write next to ${envFile}: ${(e as Error).message}`);
  }
}

/** Writes the env file atomically (tmp + fsync + rename), mode 0600, owner kept. */
export function writeEnvFile(envFile: string, old: EnvFileState | null, text: string): void {
  const tmp = `${envFile}.tmp-${Deno.pid}`;
  const file = Deno.openSync(tmp, { write: true, createNew: true, mode: 0o600 });
  try {
    writeAllSync(file, new TextEncoder().encode(text));
    Deno.chmodSync(tmp, 0o600);
    if (old?.uid != null && old.gid != null && Deno.uid() === 0) {
      Deno.chownSync(tmp, old.uid, old.gid);
    }
    file.syncSync();
    file.close();
    Deno.renameSync(tmp, envFile);
  } catch (e) {
    try {
      file.close();
    } catch { /* closed */ }
    try {
      Deno.removeSync(tmp);
    } catch { /* gone */ }
    throw new Error(`cannot write ${envFile}: ${(e as Error).message}`);
  }
  try {
    syncDirOf(envFile);
  } catch { /* renamed already: the new file is in place */ }
}
