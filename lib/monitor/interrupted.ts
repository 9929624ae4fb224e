/**
 * What became of the commands an earlier run claimed and never answered (the
 * agent was killed, or the host went down, between the replay claim and the
 * final reply), read from the audit log. The worker asks once at start; the
 * operator learns what happened instead of waiting for a reply that never
 * comes, and nothing runs again.
 * @module
 */

import type { AuditLog, AuditRecord } from "../audit/log.ts";
import { recordsByEvent } from "../audit/by_event.ts";
import type { Unfinished } from "../airlock/replay.ts";
import type { ReplyParts } from "../worker/reply_parts.ts";
import { provenance, refusedFacts } from "./answers.ts";
import { ERACHTER } from "./records.ts";

/** At most this many are answered at a start: the newest. */
export const MAX_INTERRUPTED = 100;

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
    answer: { status: "failed" as const, rule: "interrupted" },
  };
  const notRun = {
    head: `not run: ${lead}; nothing ran, send it again`,
    answer: { status: "failed" as const, rule: "not-run" },
  };
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
    return {
      head: `${lead}: it ${how}; its output is lost`,
      tail: provenance(last),
      answer: { status: "exited", exit_code: typeof c.exit_code === "number" ? c.exit_code : null },
    };
  }
  if (last.token.token_type.startsWith("nc.approval.")) {
    // Held for approval when the agent stopped: held commands do not survive a
    // restart, so it expires now and no later approval can run it.
    const request = records.findLast((r) => r.token.token_type === "nc.approval.request");
    const rec = last.token.token_type === "nc.approval.expire" ? last : await audit.append({
      token_type: "nc.approval.expire",
      actor: "tibet-nc",
      erin: u.eventId,
      eraan: [u.eventId],
      eromheen: { hostname, room: u.roomId, reason: "the agent restarted while it was held" },
      erachter: ERACHTER,
      parent: request,
    });
    return {
      head: `expired: the agent restarted while this command waited for approval; ` +
        `it does not run; send it again`,
      tail: provenance(rec),
      answer: { status: "expired", rule: "approval.expired" },
    };
  }
  if (last.token.token_type === "nc.airlock.deny") {
    return {
      head: `refused (${c.rule}): ${c.reason} (${lead})`,
      tail: provenance(last),
      answer: refusedFacts(String(c.rule)),
    };
  }
  return { head: `${lead}; see the record`, tail: provenance(last), answer: { status: "failed" } };
}

/** One answer to an unfinished command. */
export interface InterruptedAnswer {
  eventId: string;
  parts: ReplyParts;
}

/**
 * Answers the unfinished commands of allowed operators among `list` (at most
 * {@linkcode MAX_INTERRUPTED}, the newest); others are left out. An answer that
 * cannot be recorded is left out too, and logged.
 */
export async function answerUnfinished(
  list: Unfinished[],
  audit: AuditLog,
  config: { hostname: string; allowedUsers: string[] },
  log: (msg: string) => void,
): Promise<InterruptedAnswer[]> {
  const mine = list.filter((u) => config.allowedUsers.includes(u?.sender))
    .slice(-MAX_INTERRUPTED);
  if (mine.length === 0) return [];
  const byEvent = recordsByEvent(audit.path, mine.map((u) => u.eventId));
  const out: InterruptedAnswer[] = [];
  for (const u of mine) {
    try {
      const parts = await interruptedAnswer(
        u,
        byEvent.get(u.eventId) ?? [],
        audit,
        config.hostname,
      );
      out.push({ eventId: u.eventId, parts });
    } catch (e) {
      log(`cannot answer ${u.eventId} of the previous run: ${(e as Error).message}`);
    }
  }
  return out;
}
