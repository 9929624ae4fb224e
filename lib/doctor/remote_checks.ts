/**
 * Doctor's checks against the homeserver: reachability, clock skew, the token and its device.
 * @module
 */

import type { Config } from "../config/config.ts";
import { whoami } from "../matrix/client.ts";
import { clientVersions, type VersionsAnswer } from "../matrix/account.ts";
import { errText, netText, Report } from "./report.ts";

export async function checkHomeserver(r: Report, c: Config): Promise<boolean> {
  let res: VersionsAnswer;
  try {
    res = await clientVersions(c.homeserver);
  } catch (e) {
    r.line("FAIL", "homeserver", `cannot reach ${c.homeserver} (MATRIX_HOMESERVER): ${netText(e)}`);
    return false;
  }
  const { ms, versions } = res;
  if (versions === null) {
    r.line(
      "FAIL",
      "homeserver",
      `${c.homeserver} answered HTTP ${res.status} to /_matrix/client/versions: is MATRIX_HOMESERVER the Matrix client API base URL?`,
    );
    return false;
  }
  r.line(
    "ok",
    "homeserver",
    `${c.homeserver} answers in ${ms.toFixed(0)} ms (Matrix ${versions.at(-1)})`,
  );

  const date = res.date;
  const server = date ? Date.parse(date) : NaN;
  if (Number.isNaN(server)) {
    r.line("warn", "clock", "the homeserver sent no usable Date header; cannot compare clocks");
    return true;
  }
  // Date has whole seconds: the server's time was within [server, server + 1 s).
  const skew = (res.sentAt + ms / 2 - (server + 500)) / 1000;
  const how = `the host clock is ${Math.abs(skew).toFixed(1)} s ${
    skew > 0 ? "ahead of" : "behind"
  } the homeserver's`;
  if (Math.abs(skew) > c.timebox / 2) {
    r.line(
      "FAIL",
      "clock",
      `${how}, more than half of TIBET_NC_TIMEBOX (${c.timebox} s): fresh commands would be refused as expired; sync the clock (e.g. timedatectl set-ntp true)`,
    );
  } else if (Math.abs(skew) > 2) {
    r.line("warn", "clock", `${how}; sync the clock (e.g. timedatectl set-ntp true)`);
  } else {r.line(
      "ok",
      "clock",
      `within 2 s of the homeserver's (offset ${skew >= 0 ? "+" : ""}${skew.toFixed(1)} s)`,
    );}
  return true;
}

export async function checkToken(r: Report, c: Config): Promise<void> {
  let who;
  try {
    who = await whoami(c.homeserver, c.accessToken);
  } catch (e) {
    return r.line("FAIL", "access token", errText(e));
  }
  if (who.userId !== c.userId) {
    return r.line(
      "FAIL",
      "access token",
      `TIBET_NC_ACCESS_TOKEN belongs to ${who.userId}, not TIBET_NC_USER_ID ${c.userId}`,
    );
  }
  if (c.deviceId && c.deviceId !== who.deviceId) {
    return r.line(
      "FAIL",
      "access token",
      `TIBET_NC_DEVICE_ID is ${c.deviceId} but the access token is for device ${who.deviceId}`,
    );
  }
  r.line("ok", "access token", `valid for ${who.userId} device ${who.deviceId}`);
  const path = `${c.stateDir}/device.json`;
  try {
    const saved = JSON.parse(Deno.readTextFileSync(path));
    if (saved.userId !== who.userId || saved.deviceId !== who.deviceId) {
      r.line(
        "FAIL",
        "device",
        `${c.stateDir} holds the keys of ${saved.userId} device ${saved.deviceId}, but the access token is for device ${who.deviceId}: the agent will refuse to start; use that device's token, or "tibet-nc login" with an empty state dir`,
      );
    } else r.line("ok", "device", `${c.stateDir} belongs to device ${who.deviceId}`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      r.line(
        "warn",
        "device",
        `${path} does not exist yet: the agent binds the state dir to device ${who.deviceId} at its first start`,
      );
    } else r.line("FAIL", "device", `cannot read ${path}: ${errText(e)}`);
  }
}
