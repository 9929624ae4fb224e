/**
 * The text of the monitor's answers, kept apart from what decides them: the
 * provenance line, a run's summary line, a refusal.
 * @module
 */

import type { AuditLog } from "../audit/log.ts";
import type { AuditRecord } from "../audit/record.ts";
import { formatBytes } from "../exec/output.ts";
import type { RunResult } from "../exec/run.ts";
import type { AnswerFacts, ReplyParts } from "../worker/reply_parts.ts";

/** The provenance line of a record: `TIBET: <token> | L4: <head> | #<seq>`. */
export function provenance(r: AuditRecord): string {
  return `TIBET: ${r.token.id} | L4: ${r.l4.slice(0, 16)} | #${r.seq}`;
}

/** The tail of an answer whose record could not be written. */
export function notRecorded(e: unknown): string {
  return `(not recorded: ${(e as Error).message})`;
}

/** A refusal, as the operator reads it. */
export function refusedParts(rule: string, reason: string, tail?: string): ReplyParts {
  return { head: `refused (${rule}): ${reason}`, tail, answer: refusedFacts(rule) };
}

/** The facts of a refusal: `deny.expired` is its own status, since a script may resend. */
export function refusedFacts(rule: string): AnswerFacts {
  return { status: rule === "deny.expired" ? "expired" : "refused", rule };
}

/** The facts of a finished run, for the reply's `org.tibet-nc.answer`. */
export function exitedFacts(r: RunResult): AnswerFacts {
  return {
    status: "exited",
    exit_code: r.code,
    duration_ms: Math.round(r.durationMs),
    timed_out: r.timedOut,
    cancelled: r.cancelled,
  };
}

/** The first line of a finished command's reply: exit status, time, why it stopped. */
export function summary(r: RunResult, timeoutS: number): string {
  const secs = (r.durationMs / 1000).toFixed(r.durationMs < 10_000 ? 2 : 0);
  const why = r.timedOut
    ? `, stopped after the ${timeoutS} s timeout`
    : r.cancelled
    ? `, ${r.cancelReason ?? "cancelled"}`
    : r.outputLimited
    ? `, stopped at the output limit (${formatBytes(r.totalBytes)})`
    : "";
  return `exit ${r.code ?? "?"} · ${secs} s${why}`;
}

/**
 * Records that a command recorded as run did not start or failed (`rule`,
 * `reason`) and gives its answer; the answer stands even if that record fails.
 */
export async function failedParts(
  audit: AuditLog,
  record: AuditRecord,
  eventId: string,
  rule: string,
  reason: string,
): Promise<ReplyParts> {
  let tail = provenance(record);
  try {
    tail = provenance(
      await audit.appendResult(record, {
        exit_code: null,
        eraan: [eventId],
        eromheen: { failed: rule, reason },
      }),
    );
  } catch (e) {
    tail += ` (result not recorded: ${(e as Error).message})`;
  }
  return { head: `refused (${rule}): ${reason}`, tail, answer: { status: "failed", rule } };
}
