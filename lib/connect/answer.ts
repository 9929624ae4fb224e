/**
 * What an agent's reply says, read from its content as sent (the latest edit's
 * `m.new_content`): the text, the `org.tibet-nc.answer` facts, whether more
 * edits follow, and the exit code `connect` gives for it. Pure.
 * @module
 */

import { ANSWER_KEY, PROVENANCE } from "../matrix/reply.ts";
import type { AnswerFacts } from "../worker/reply_parts.ts";
import { EXIT } from "./options.ts";

/** The facts as a reply carries them: the provenance line's added. */
export type SentFacts = Partial<AnswerFacts> & { tibet_id?: string; l4?: string; seq?: number };

/** One reply's current state. */
export interface Answer {
  /** The whole text as a person reads it. */
  text: string;
  facts: SentFacts | null;
  /** No edit follows: the command's answer is complete. */
  final: boolean;
}

/** Reads a reply's content (for an edit: its `m.new_content`). */
export function readAnswer(content: Record<string, unknown>): Answer {
  const text = typeof content.body === "string" ? content.body : "";
  const raw = content[ANSWER_KEY];
  const facts = raw && typeof raw === "object" && typeof (raw as SentFacts).status === "string"
    ? raw as SentFacts
    : null;
  // Agents before the facts existed: progress lines start "running #N".
  const final = facts
    ? facts.status !== "running" && facts.status !== "held"
    : !/^running #\d+ /.test(text) && !/^held for approval #/.test(text);
  return { text, facts, final };
}

/**
 * Splits a finished command's text into its summary line, its output and its
 * provenance line (`replyContent` joins them with newlines; the summary is one
 * line).
 */
export function splitAnswer(text: string): { head: string; output: string; tail: string } {
  const lines = text.split("\n");
  const head = lines.shift() ?? "";
  let tail = "";
  const last = lines.at(-1) ?? "";
  if (PROVENANCE.test(last)) {
    tail = last;
    lines.pop();
  }
  return { head, output: lines.join("\n"), tail };
}

/** The exit code of `connect` for a final answer (README "Connect from a terminal"). */
export function exitCodeOf(a: Answer): number {
  const f = a.facts;
  if (!f) return /^refused \(/.test(a.text) ? EXIT.refused : 0;
  switch (f.status) {
    case "exited":
      return typeof f.exit_code === "number" ? f.exit_code : EXIT.failed;
    case "refused":
      return EXIT.refused;
    case "expired":
      return EXIT.expired;
    case "failed":
      return EXIT.failed;
    default:
      return 0;
  }
}

/** The fields `--json` prints. */
export function jsonFields(a: Answer, extra: Record<string, unknown>): Record<string, unknown> {
  const f = a.facts ?? {};
  return {
    ...extra,
    status: f.status ?? (a.final ? "done" : "running"),
    exit_code: f.exit_code ?? null,
    duration_ms: f.duration_ms ?? null,
    rule: f.rule ?? null,
    tibet_id: f.tibet_id ?? null,
    l4: f.l4 ?? null,
    seq: f.seq ?? null,
    timed_out: f.timed_out ?? false,
    cancelled: f.cancelled ?? false,
    connect_exit_code: exitCodeOf(a),
    text: a.text,
  };
}
