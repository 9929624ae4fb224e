/**
 * The few raw client-server API calls of the one-shot commands (`login`, `trust`,
 * `doctor`), which need no SDK client: password login, logout, a user's master
 * key, the server's versions.
 * @module
 */

import type { WhoAmI } from "./client.ts";

/** A logged-in device of the account. */
export interface Session extends WhoAmI {
  accessToken: string;
}

/** Logs `userId` in with its password as a new device; errors say what the server answered. */
export async function passwordLogin(
  homeserver: string,
  userId: string,
  password: string,
  deviceName: string,
): Promise<Session> {
  let r: Response;
  try {
    r = await fetch(`${homeserver}/_matrix/client/v3/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        type: "m.login.password",
        identifier: { type: "m.id.user", user: userId },
        password,
        initial_device_display_name: deviceName,
      }),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (e) {
    const cause = (e as Error).cause instanceof Error
      ? `: ${((e as Error).cause as Error).message}`
      : "";
    throw new Error(`cannot reach ${homeserver}: ${(e as Error).message}${cause}`);
  }
  const body = await r.json().catch(() => ({}));
  if (r.status === 403 && body.errcode === "M_USER_DEACTIVATED") {
    throw new Error(`the homeserver says ${userId} is deactivated`);
  }
  if (r.status === 403 || r.status === 401) {
    throw new Error(
      `the homeserver rejected the password for ${userId} (wrong password, or no such account)`,
    );
  }
  if (r.status === 429) {
    const wait = Math.ceil((body.retry_after_ms ?? 0) / 1000);
    throw new Error(
      `the homeserver is limiting logins; try again${wait ? ` in ${wait} s` : ""}`,
    );
  }
  if (!r.ok || typeof body.access_token !== "string" || typeof body.device_id !== "string") {
    const why = body.errcode ? `${body.errcode}: ${body.error ?? ""}` : `HTTP ${r.status}`;
    throw new Error(`the homeserver refused the login (${why.trim()})`);
  }
  return {
    userId: typeof body.user_id === "string" ? body.user_id : userId,
    deviceId: body.device_id,
    accessToken: body.access_token,
  };
}

/** Logs the new device out again (deletes it) after a failure; best effort. */
export async function logout(homeserver: string, accessToken: string): Promise<void> {
  try {
    const r = await fetch(`${homeserver}/_matrix/client/v3/logout`, {
      method: "POST",
      headers: { authorization: `Bearer ${accessToken}`, "content-type": "application/json" },
      body: "{}",
      signal: AbortSignal.timeout(10_000),
    });
    await r.body?.cancel();
  } catch { /* the device stays; the message below says what happened */ }
}

/**
 * `userId`'s current cross-signing master key as the homeserver publishes it,
 * or null when it has none. Throws when the server cannot be asked.
 */
export async function fetchMasterKey(
  homeserver: string,
  accessToken: string,
  userId: string,
): Promise<string | null> {
  const r = await fetch(`${homeserver}/_matrix/client/v3/keys/query`, {
    method: "POST",
    headers: { authorization: `Bearer ${accessToken}`, "content-type": "application/json" },
    body: JSON.stringify({ device_keys: { [userId]: [] } }),
    signal: AbortSignal.timeout(10_000),
  });
  if (!r.ok) {
    await r.body?.cancel();
    throw new Error(`keys/query for ${userId} failed: HTTP ${r.status}`);
  }
  const body = await r.json();
  const keys = body?.master_keys?.[userId]?.keys as Record<string, string> | undefined;
  return keys ? Object.values(keys)[0] ?? null : null;
}

/** The homeserver's `/versions` answer and how long it took, for doctor's reachability and clock checks. */
export interface VersionsAnswer {
  status: number;
  /** Spec versions the server lists, or null when the body was not a versions answer. */
  versions: string[] | null;
  /** The server's Date header, if any. */
  date: string | null;
  /** Local time (ms since epoch) when the request was sent. */
  sentAt: number;
  /** Round trip in ms. */
  ms: number;
}

/** Asks `/_matrix/client/versions`, which needs no token; throws when the server cannot be reached. */
export async function clientVersions(homeserver: string): Promise<VersionsAnswer> {
  const t0 = performance.now();
  const sentAt = Date.now();
  const res = await fetch(`${homeserver}/_matrix/client/versions`, {
    signal: AbortSignal.timeout(10_000),
  });
  const ms = performance.now() - t0;
  const body = await res.json().catch(() => null);
  const versions = res.ok && Array.isArray(body?.versions) ? body.versions as string[] : null;
  return { status: res.status, versions, date: res.headers.get("date"), sentAt, ms };
}
