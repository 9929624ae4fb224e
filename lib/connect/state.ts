/**
 * The client's state dir (0700): its session (`session.json`, 0600), its
 * durable crypto store (`crypto/`), the agents it pinned (`known_hosts.json`)
 * and the prompt's history. One process at a time uses it (`lock`): two would
 * write one crypto store over each other.
 * @module
 */

import { ConnectError, EXIT } from "./options.ts";

/** The device this client logged in as. */
export interface SavedSession {
  homeserver: string;
  userId: string;
  deviceId: string;
  accessToken: string;
}

/** Paths under the state dir. */
export function statePaths(dir: string) {
  return {
    session: `${dir}/session.json`,
    crypto: `${dir}/crypto`,
    knownHosts: `${dir}/known_hosts.json`,
    history: `${dir}/history`,
    lock: `${dir}/lock`,
  };
}

/** Creates the state dir 0700 (or refuses one that others can enter). */
export function prepareStateDir(dir: string): void {
  Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = Deno.statSync(dir);
  if (!st.isDirectory) throw new ConnectError(`${dir} is not a directory`, EXIT.connection);
  if (st.uid !== null && st.uid !== Deno.uid()) {
    throw new ConnectError(
      `${dir} belongs to uid ${st.uid}, not you: pass --state-dir a dir of your own`,
      EXIT.connection,
    );
  }
  // It holds an access token and private keys: nobody else may enter it.
  if (((st.mode ?? 0) & 0o077) !== 0) Deno.chmodSync(dir, 0o700);
}

/** The saved session, or null before the first login. */
export function readSession(dir: string): SavedSession | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(statePaths(dir).session);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new ConnectError(`cannot read ${statePaths(dir).session}: ${(e as Error).message}`, 255);
  }
  try {
    const s = JSON.parse(text) as SavedSession;
    for (const k of ["homeserver", "userId", "deviceId", "accessToken"] as const) {
      if (typeof s[k] !== "string" || s[k] === "") throw new Error(`no ${k}`);
    }
    return s;
  } catch (e) {
    throw new ConnectError(
      `${statePaths(dir).session} is damaged (${(e as Error).message}): move ${dir} away ` +
        `and connect again to log in as a new device`,
      EXIT.connection,
    );
  }
}

/** Writes the session atomically, 0600. */
export function writeSession(dir: string, s: SavedSession): void {
  const path = statePaths(dir).session;
  const tmp = `${path}.tmp`;
  Deno.writeTextFileSync(tmp, JSON.stringify(s, null, 2) + "\n", { mode: 0o600 });
  Deno.renameSync(tmp, path);
}

function alive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Takes the state dir for this process; returns its release. A lock left by a
 * process that died is taken over.
 */
export function lockStateDir(dir: string): () => void {
  const path = statePaths(dir).lock;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      Deno.writeTextFileSync(path, `${Deno.pid}\n`, { createNew: true, mode: 0o600 });
      return () => {
        try {
          if (Deno.readTextFileSync(path).trim() === String(Deno.pid)) Deno.removeSync(path);
        } catch { /* gone already */ }
      };
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      const pid = Number(Deno.readTextFileSync(path).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== Deno.pid && alive(pid)) {
        throw new ConnectError(
          `another tibet-nc connect (pid ${pid}) is using ${dir}; wait for it, or give this ` +
            `one its own device with --state-dir`,
          EXIT.connection,
        );
      }
      Deno.removeSync(path);
    }
  }
  throw new ConnectError(`cannot take ${path}`, EXIT.connection);
}
