/**
 * The privileged lane: commands the policy's `approve` list holds until a
 * second operator approves them. A held command waits here under a short id;
 * `approve ID` or `reject ID`, typed by another allowed operator (the text of an
 * end-to-end encrypted message: the id is inside the ciphertext, never taken
 * from a relation the homeserver could rewrite), decides it once. Every step
 * is a record chained to the request (`parent_seq`): request, then grant,
 * rejection, expiry or withdrawal. Held commands live in memory only: after a
 * restart the next start answers them "expired" (`interrupted.ts`), so none
 * runs twice and none is forgotten.
 * @module
 */

import type { AuditLog, AuditRecord } from "../audit/log.ts";
import type { CommandOrigin } from "./protocol.ts";
import { ERACHTER } from "./records.ts";

/** How a held command was decided. */
export type Decision =
  | { kind: "approve"; by: string; record: AuditRecord }
  | { kind: "reject"; by: string; record: AuditRecord }
  | { kind: "expire"; record: AuditRecord | null }
  | { kind: "withdraw"; reason: string; record: AuditRecord | null };

/** A command waiting for approval. */
export interface Held {
  id: string;
  requester: string;
  text: string;
  expiresAt: number;
  request: AuditRecord;
  /** Settles once, with the first decision. */
  decision: Promise<Decision>;
}

/** The answer to an `approve`/`reject` message. */
export type Ruling =
  | { ok: true; held: Held; record: AuditRecord }
  | { ok: false; rule: string; reason: string };

/** The held commands of one agent. */
export interface Approvals {
  /** Records the request and holds `origin`'s command; `rule` is the pattern that held it. */
  hold(origin: CommandOrigin, rule: string): Promise<Held>;
  /** `approve ID` / `reject ID` from `origin.sender`. */
  rule(origin: CommandOrigin, verb: "approve" | "reject", id: string): Promise<Ruling>;
  /** Withdraws a held command (its requester's `cancel`, or the agent stopping). */
  withdraw(id: string, reason: string): Promise<void>;
  list(): Held[];
}

/** The messages that decide a held command: `approve 7f3a9c`, `reject 7f3a9c`. */
export const RULING = /^(approve|reject)\s+#?([0-9a-f]{6})$/i;

/** The held commands, recorded in `audit`; each expires after `timeoutS` seconds. */
export function createApprovals(
  audit: AuditLog,
  config: { hostname: string; allowedUsers: string[]; approvalTimeout: number },
  log: (msg: string) => void,
): Approvals {
  const held = new Map<string, Held & { settle(d: Decision): void }>();

  const append = (
    token_type: string,
    actor: string,
    origin: CommandOrigin,
    parent: AuditRecord,
    extra: Record<string, string | number>,
  ) =>
    audit.append({
      token_type,
      actor,
      erin: origin.text,
      eraan: [origin.eventId],
      eromheen: { hostname: config.hostname, room: origin.roomId, ...extra },
      erachter: ERACHTER,
      parent,
    });

  const take = (id: string) => {
    const h = held.get(id);
    held.delete(id);
    return h;
  };

  return {
    async hold(origin, rule) {
      let id: string;
      do {
        id = [...crypto.getRandomValues(new Uint8Array(3))]
          .map((b) => b.toString(16).padStart(2, "0")).join("");
      } while (held.has(id));
      const expiresAt = Date.now() + config.approvalTimeout * 1000;
      const request = await audit.append({
        token_type: "nc.approval.request",
        actor: origin.sender,
        erin: origin.text,
        eraan: [origin.eventId],
        eromheen: {
          hostname: config.hostname,
          room: origin.roomId,
          request_id: id,
          rule,
          expires: new Date(expiresAt).toISOString(),
        },
        erachter: ERACHTER,
      });
      let settle!: (d: Decision) => void;
      const decision = new Promise<Decision>((r) => settle = r);
      const entry = {
        id,
        requester: origin.sender,
        text: origin.text,
        expiresAt,
        request,
        decision,
      };
      held.set(id, { ...entry, settle });
      const timer = setTimeout(async () => {
        const h = take(id);
        if (!h) return;
        let record: AuditRecord | null = null;
        try {
          record = await append("nc.approval.expire", "tibet-nc", origin, request, {
            request_id: id,
            reason: `no approval within ${config.approvalTimeout} s`,
          });
        } catch (e) {
          log(`cannot record the expiry of #${id}: ${(e as Error).message}`);
        }
        h.settle({ kind: "expire", record });
      }, config.approvalTimeout * 1000);
      decision.finally(() => clearTimeout(timer));
      return entry;
    },

    async rule(origin, verb, id) {
      const h = held.get(id.toLowerCase());
      if (!h) {
        return {
          ok: false,
          rule: "deny.approval.unknown",
          reason: `no command waits for approval as ${id}: it was decided, expired, ` +
            "withdrawn, lost in a restart, or never held",
        };
      }
      if (origin.sender === h.requester) {
        return {
          ok: false,
          rule: "deny.approval.self",
          reason: `${origin.sender} asked for #${h.id}; another operator must ${verb} it`,
        };
      }
      if (Date.now() > h.expiresAt) {
        return { ok: false, rule: "deny.approval.expired", reason: `#${h.id} has expired` };
      }
      take(h.id);
      const record = await append(
        verb === "approve" ? "nc.approval.grant" : "nc.approval.reject",
        origin.sender,
        origin,
        h.request,
        { request_id: h.id, requester: h.requester },
      );
      h.settle({ kind: verb, by: origin.sender, record });
      return { ok: true, held: h, record };
    },

    async withdraw(id, reason) {
      const h = take(id);
      if (!h) return;
      let record: AuditRecord | null = null;
      try {
        record = await append(
          "nc.approval.withdraw",
          h.requester,
          {
            sender: h.requester,
            roomId: "",
            eventId: h.request.token.eraan[0] ?? "",
            text: h.text,
          },
          h.request,
          { request_id: h.id, reason },
        );
      } catch (e) {
        log(`cannot record the withdrawal of #${id}: ${(e as Error).message}`);
      }
      h.settle({ kind: "withdraw", reason, record });
    },

    list: () => [...held.values()],
  };
}
