/**
 * Doctor's checks of the crypto store and the audit log.
 * @module
 */

import type { Config } from "../config/config.ts";
import { inspectStore } from "../store/inspect.ts";
import { AUDIT_LOG_FILE } from "../audit/log.ts";
import { verifyLogFile } from "../audit/verify.ts";
import { errText, Report, statOrNull } from "./report.ts";

/** Reads every database of the crypto store without writing (no compaction). */
export function checkCryptoStore(r: Report, c: Config): void {
  const dir = `${c.stateDir}/crypto`;
  const found = inspectStore(dir, c.storePassphrase);
  if (found.kind === "unreadable") return r.line("FAIL", "crypto store", found.reason);
  if (found.kind === "empty") {
    return statOrNull(`${c.stateDir}/device.json`)
      ? r.line(
        "FAIL",
        "crypto store",
        `${dir} is empty but ${c.stateDir}/device.json names a device: that device's keys are lost; run "tibet-nc login" with an empty state dir`,
      )
      : r.line(
        "warn",
        "crypto store",
        `${dir} does not exist yet: it is created at the first login or start`,
      );
  }
  const rest = found.encrypted
    ? "encrypted at rest"
    : "not encrypted at rest (TIBET_NC_STORE_PASSPHRASE or _KEY_FILE would encrypt a new store)";
  r.line(
    "ok",
    "crypto store",
    `${dir}: ${found.databases} database(s) readable, ${found.journalRecords} journal record(s), ${rest}`,
  );
}

export async function checkAuditLog(r: Report, c: Config): Promise<void> {
  const path = `${c.stateDir}/${AUDIT_LOG_FILE}`;
  if (!statOrNull(path)) {
    return r.line("ok", "audit log", `${path} does not exist yet (no command has run)`);
  }
  try {
    const v = await verifyLogFile(path);
    if (v.ok) {
      r.line(
        "ok",
        "audit log",
        `${path}: ${v.count} record(s) verified, head ${v.head ? v.head.slice(0, 16) : "none"}`,
      );
    } else {
      r.line("FAIL", "audit log", `${path}: record #${v.firstBadSeq}: ${v.reason}`);
    }
  } catch (e) {
    r.line("FAIL", "audit log", `cannot read ${path}: ${errText(e)}`);
  }
}
