/**
 * Answers the commands an earlier run claimed and never answered (the agent was
 * killed, or the host went down, between the replay claim and the final reply).
 * The operator learns what became of each instead of waiting for a reply that
 * never comes; nothing runs again. What happened is read from the audit log.
 * @module
 */

import type { AuditLog, AuditRecord } from "../audit/log.ts";
import { recordsByEvent } from "../audit/by_event.ts";
import type { SeenEvents, Unfinished } from "../airlock/replay.ts";
import { ERACHTER, provenance } from "./handler.ts";
import type { Replier, ReplyParts } from "./reply_parts.ts";

/** At most this many are answered at a start: the newest. */
export const MAX_INTERRUPTED = 100;

/** What {@linkcode answerInterrupted} needs. */
export interface InterruptedDeps {
  seen: SeenEvents;
  audit: AuditLog;
  allowedUsers: string[];
  hostname: string;
  replier: (roomId: string, eventId: string) => Replier;
  log: (msg: string) => void;
}

function context(r: AuditRecord): Record<string, unknown> {
  try {
    return JSON.parse(r.token.eromheen) as Record<string, unknown>;
  } catch {
    return {};
  }
}

/**
 * The answer to one unfinished command, from its records (oldest first); may
 * append the record that closes it. Exported for tests.
 */
export async function interruptedAnswer(
  u: Unfinished,
  records: AuditRecord[],
  audit: AuditLog,
  hostname: string,
): Promise<ReplyParts> {
  const last = records.at(-1);
  const execute = records.find((r) => r.token.token_type === "nc.command.execute");
  const lead = "the agent restarted before answering this command";
  const interrupted = {
    head: `interrupted: the agent stopped while this command ran; its output is lost ` +
      `and it is not run again`,
  };
  const notRun = { head: `not run: ${lead}; nothing ran, send it again` };
  if (last?.token.token_type === "nc.command.interrupted") {
    return { ...notRun, tail: provenance(last) };
  }
  if (!last) {
    const rec = await audit.append({
      token_type: "nc.command.interrupted",
      actor: u.sender,
      erin: u.eventId,
      eraan: [u.eventId],
      eromheen: { hostname, room: u.roomId, verdict: "not run", reason: "agent stopped" },
      erachter: ERACHTER,
    });
    return { ...notRun, tail: provenance(rec) };
  }
  if (execute && last === execute) {
    const rec = await audit.appendResult(execute, {
      exit_code: null,
      eraan: [u.eventId],
      eromheen: { failed: "interrupted", reason: "the agent stopped while it ran" },
    });
    return { ...interrupted, tail: provenance(rec) };
  }
  const c = context(last);
  if (last.token.token_type === "nc.command.result" && c.failed === "interrupted") {
    return { ...interrupted, tail: provenance(last) };
  }
  if (last.token.token_type === "nc.command.result") {
    const how = c.exit_code === null || c.exit_code === undefined
      ? `ended (${c.failed ?? "no exit code"})`
      : `ended with exit ${c.exit_code}`;
    return { head: `${lead}: it ${how}; its output is lost`, tail: provenance(last) };
  }
  if (last.token.token_type === "nc.airlock.deny") {
    return { head: `refused (${c.rule}): ${c.reason} (${lead})`, tail: provenance(last) };
  }
  return { head: `${lead}; see the record`, tail: provenance(last) };
}

/**
 * Answers the earlier runs' unfinished commands of allowed operators (strangers
 * get no answer, as always) and marks each done. Returns how many were answered.
 */
export async function answerInterrupted(deps: InterruptedDeps): Promise<number> {
  const all = deps.seen.takeUnfinished();
  const mine = all.filter((u) => deps.allowedUsers.includes(u.sender)).slice(-MAX_INTERRUPTED);
  const answering = new Set(mine);
  for (const u of all) if (!answering.has(u)) deps.seen.done(u.eventId);
  if (mine.length === 0) return 0;
  const byEvent = recordsByEvent(deps.audit.path, mine.map((u) => u.eventId));
  let answered = 0;
  for (const u of mine) {
    try {
      const parts = await interruptedAnswer(
        u,
        byEvent.get(u.eventId) ?? [],
        deps.audit,
        deps.hostname,
      );
      await deps.replier(u.roomId, u.eventId).send(parts);
      deps.seen.done(u.eventId);
      deps.log(`answered ${u.eventId} of the previous run: ${parts.head}`);
      answered++;
    } catch (e) {
      deps.log(`cannot answer ${u.eventId} of the previous run: ${(e as Error).message}`);
    }
  }
  return answered;
}
