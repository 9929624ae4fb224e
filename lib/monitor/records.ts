/**
 * The records the monitor writes for the worker's requests. The worker names
 * what happened; the monitor checks that the request is one the worker may
 * make, builds the record itself (host, intent, rule) and signs it.
 * @module
 */

import type { AuditLog, AuditRecord } from "../audit/log.ts";
import type { JsonObject } from "../audit/canonical_json.ts";
import type { CommandOrigin, RecordEntry } from "./protocol.ts";

/** The intent (`erachter`) of every record written for an operator. */
export const ERACHTER = "operator diagnostics via Matrix";

/**
 * Refusals the worker decides, and whose messages they concern: a stranger's
 * (not in TIBET_NC_ALLOWED_USERS) or an allowed operator's. Any other rule is
 * the monitor's own to decide, so a record request naming it is refused.
 */
export const WORKER_RULES: Readonly<Record<string, "stranger" | "operator">> = {
  "deny.sender": "stranger",
  "deny.sender.flood": "stranger",
  "deny.device": "operator",
  "deny.identity": "operator",
  "deny.unreadable": "operator",
  "deny.expired": "operator",
  "deny.rate": "operator",
  "deny.busy": "operator",
  "deny.approval.edit": "operator",
};

const MAX_TEXT = 65_536;
const MAX_REASON = 2000;
const ID = /^[!$@][^\s]{1,254}$/;

/** A request the monitor will not act on; the message says why. */
export class BadRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BadRequestError";
  }
}

/**
 * Throws {@linkcode BadRequestError} unless `o` is a well-formed origin whose
 * sender is an allowed operator (or, with `stranger`, is not one).
 */
export function checkOrigin(o: CommandOrigin, allowedUsers: string[], stranger = false): void {
  const ok = typeof o === "object" && o !== null &&
    typeof o.sender === "string" && o.sender.startsWith("@") && ID.test(o.sender) &&
    typeof o.roomId === "string" && o.roomId.startsWith("!") && ID.test(o.roomId) &&
    typeof o.eventId === "string" && o.eventId.startsWith("$") && ID.test(o.eventId) &&
    typeof o.text === "string" && o.text.length <= MAX_TEXT;
  if (!ok) throw new BadRequestError("malformed command origin");
  if (allowedUsers.includes(o.sender) === stranger) {
    throw new BadRequestError(
      stranger
        ? `${o.sender} is an allowed operator, not a stranger`
        : `${o.sender} is not in TIBET_NC_ALLOWED_USERS`,
    );
  }
}

/** Appends a record of `origin` with the operator intent. */
function appendFor(
  audit: AuditLog,
  origin: CommandOrigin,
  token_type: string,
  eromheen: JsonObject,
  parent?: AuditRecord,
): Promise<AuditRecord> {
  return audit.append({
    token_type,
    actor: origin.sender,
    erin: origin.text,
    eraan: [origin.eventId],
    eromheen: { room: origin.roomId, ...eromheen },
    erachter: ERACHTER,
    parent,
  });
}

/** Appends the refusal of `origin` by `rule`. */
export function appendDeny(
  audit: AuditLog,
  hostname: string,
  origin: CommandOrigin,
  rule: string,
  reason: string,
): Promise<AuditRecord> {
  return appendFor(audit, origin, "nc.airlock.deny", { hostname, verdict: "deny", rule, reason });
}

/** Appends the record that lets `origin` run; `parent`: the approval that let it. */
export function appendExecute(
  audit: AuditLog,
  hostname: string,
  origin: CommandOrigin,
  context: JsonObject,
  parent?: AuditRecord,
): Promise<AuditRecord> {
  return appendFor(audit, origin, "nc.command.execute", {
    hostname,
    verdict: "allow",
    ...context,
  }, parent);
}

/** Appends the record of a file sent with a command's answer (its complete output). */
export function appendAttachment(
  audit: AuditLog,
  hostname: string,
  origin: CommandOrigin,
  file: { name: string; bytes: number; sha256: string; result_seq: number; truncated: boolean },
): Promise<AuditRecord> {
  return appendFor(audit, origin, "nc.file.attach", { hostname, file });
}

/**
 * Validates and appends a record request of the worker. Throws
 * {@linkcode BadRequestError} for one it may not make, and the audit log's
 * error when the record cannot be written.
 */
export function appendRequested(
  audit: AuditLog,
  config: { hostname: string; allowedUsers: string[] },
  origin: CommandOrigin,
  entry: RecordEntry,
): Promise<AuditRecord> {
  if (entry?.kind === "deny") {
    const whose = Object.hasOwn(WORKER_RULES, entry.rule) ? WORKER_RULES[entry.rule] : undefined;
    if (!whose) throw new BadRequestError(`rule ${JSON.stringify(entry.rule)} is not the worker's`);
    if (typeof entry.reason !== "string" || entry.reason.length > MAX_REASON) {
      throw new BadRequestError("malformed refusal reason");
    }
    checkOrigin(origin, config.allowedUsers, whose === "stranger");
    return appendDeny(audit, config.hostname, origin, entry.rule, entry.reason);
  }
  if (entry?.kind === "exit" || entry?.kind === "cancel") {
    checkOrigin(origin, config.allowedUsers);
    const type = entry.kind === "exit" ? "nc.session.close" : "nc.command.cancel";
    return appendFor(audit, origin, type, { hostname: config.hostname });
  }
  throw new BadRequestError("unknown record kind");
}
