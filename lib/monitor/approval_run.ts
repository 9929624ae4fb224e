/**
 * The privileged lane inside one run: holding a command the policy's `approve`
 * list matched until another operator decides (`approvals.ts` keeps the held
 * commands), and answering that operator's `approve ID` / `reject ID`.
 * @module
 */

import type { AuditRecord } from "../audit/log.ts";
import type { Held } from "./approvals.ts";
import { provenance, refusedFacts } from "./answers.ts";
import type { CommandSink, MonitorContext } from "./command_run.ts";
import type { CommandOrigin } from "./protocol.ts";

/**
 * Holds the command for another operator: records the request, tells the
 * room how to approve it, and waits. Resolves to the approval, or null once
 * the command was answered otherwise (rejected, expired, withdrawn).
 */
export async function holdForApproval(
  ctx: MonitorContext,
  origin: CommandOrigin,
  sink: CommandSink,
  rule: string,
  reason: string,
  /** Gets the withdraw function while the command is held (a cancel withdraws it); null once decided. */
  onWithdraw: (withdraw: ((reason: string) => void) | null) => void,
): Promise<{ by: string; record: AuditRecord } | null> {
  let held: Held;
  try {
    held = await ctx.approvals.hold(origin, rule);
  } catch (e) {
    sink.final(false, {
      answer: refusedFacts("deny.audit"),
      head: `refused (deny.audit): the approval request cannot be recorded: ${
        (e as Error).message
      }`,
    });
    return null;
  }
  onWithdraw((why) => void ctx.approvals.withdraw(held.id, why));
  const others = ctx.config.allowedUsers.filter((u) => u !== origin.sender);
  const until = new Date(held.expiresAt).toISOString().slice(11, 19);
  sink.held({
    head: `held for approval #${held.id}: ${reason}. ` +
      (others.length === 0
        ? "No other operator is allowed (TIBET_NC_ALLOWED_USERS), so nobody can approve it."
        : `Another operator (${others.join(", ")}) sends \`approve ${held.id}\` or ` +
          `\`reject ${held.id}\` before ${until} UTC (TIBET_NC_APPROVAL_TIMEOUT); ` +
          `\`cancel\` withdraws it.`) +
      // No provenance line yet: that marks the answer, which comes with the decision.
      ` (request recorded as #${held.request.seq})`,
    answer: { status: "held" },
  });
  const d = await held.decision;
  onWithdraw(null);
  if (d.kind === "approve") return d;
  const tail = d.record ? provenance(d.record) : provenance(held.request);
  const head = d.kind === "reject"
    ? `rejected by ${d.by}: not run`
    : d.kind === "expire"
    ? `expired: no approval within ${ctx.config.approvalTimeout} s; not run`
    : `withdrawn (${d.reason}): not run`;
  const answer = d.kind === "expire" ? { status: "expired" as const, rule: "approval.expired" } : {
    status: "refused" as const,
    rule: `approval.${d.kind === "reject" ? "rejected" : "withdrawn"}`,
  };
  sink.final(false, { head, tail, answer });
  return null;
}

/** `approve ID` / `reject ID` from another operator: decides a held command. */
export async function decideHeld(
  ctx: MonitorContext,
  origin: CommandOrigin,
  sink: CommandSink,
  refuse: (rule: string, reason: string) => Promise<void>,
  verb: "approve" | "reject",
  id: string,
): Promise<void> {
  let r;
  try {
    r = await ctx.approvals.rule(origin, verb, id);
  } catch (e) {
    return sink.final(false, {
      head: `refused (deny.audit): the ${verb} cannot be recorded: ${(e as Error).message}`,
      answer: refusedFacts("deny.audit"),
    });
  }
  if (!r.ok) return await refuse(r.rule, r.reason);
  const what = verb === "approve"
    ? `approved #${r.held.id} of ${r.held.requester}: it runs now; its output answers their command`
    : `rejected #${r.held.id} of ${r.held.requester}: it does not run`;
  sink.final(true, {
    head: what,
    pre: r.held.text,
    tail: provenance(r.record),
    answer: { status: "done" },
  });
}
