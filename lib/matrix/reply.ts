/**
 * Reply contents: `m.notice` (bots must not trigger other bots), an HTML
 * `<pre><code>` body with a plain-text fallback, tied to the command by
 * `m.in_reply_to` (and in a fleet room by an `m.thread` on it).
 * @module
 */

import type { AnswerFacts, ReplyParts } from "../worker/reply_parts.ts";

/** The content key of a reply's {@linkcode AnswerFacts} (documented in the README). */
export const ANSWER_KEY = "org.tibet-nc.answer";

/** A reply message content. */
export interface ReplyContent {
  msgtype: "m.notice";
  body: string;
  /** Absent when the HTML would not fit {@linkcode MAX_EVENT_BYTES}. */
  format?: "org.matrix.custom.html";
  formatted_body?: string;
  "m.relates_to"?: Relation;
  [key: string]: unknown;
}

/**
 * How a reply relates to its command: a plain reply, or (fleet rooms) a thread
 * on the command whose `m.in_reply_to` fallback keeps it a reply for clients
 * and tools without threads.
 */
export type Relation =
  | { "m.in_reply_to": { event_id: string } }
  | {
    rel_type: "m.thread";
    event_id: string;
    is_falling_back: true;
    "m.in_reply_to": { event_id: string };
  };

/** The relation of a reply to `commandId`, threaded on it when `thread`. */
export function relation(commandId: string, thread: boolean): Relation {
  const reply = { "m.in_reply_to": { event_id: commandId } };
  return thread
    ? { rel_type: "m.thread", event_id: commandId, is_falling_back: true, ...reply }
    : reply;
}

/**
 * Plain-JSON bytes a reply or edit may have in all: its encrypted form (base64
 * of this, plus Megolm's overhead) must stay under the homeserver's 64 KiB
 * event limit.
 */
export const MAX_EVENT_BYTES = 46_000;

const bytes = (v: unknown): number => new TextEncoder().encode(JSON.stringify(v)).length;

/** Escapes text for HTML element content (attributes are never built from text). */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/**
 * Builds a reply: an optional heading line, a preformatted block, and an optional
 * trailer line (the provenance line).
 */
export function replyContent(
  inReplyTo: string | null,
  parts: ReplyParts,
  thread = false,
): ReplyContent {
  const plain = [parts.head, parts.pre, parts.tail].filter((p) => p !== undefined && p !== "")
    .join("\n");
  const html = [
    parts.head ? escapeHtml(parts.head) : "",
    parts.pre !== undefined ? `<pre><code>${escapeHtml(parts.pre)}</code></pre>` : "",
    parts.tail ? `<p>${escapeHtml(parts.tail)}</p>` : "",
  ].filter(Boolean).join("\n");
  const content: ReplyContent = {
    msgtype: "m.notice",
    body: plain,
    format: "org.matrix.custom.html",
    formatted_body: html,
  };
  const facts = answerFacts(parts);
  if (facts) content[ANSWER_KEY] = facts;
  if (inReplyTo) content["m.relates_to"] = relation(inReplyTo, thread);
  if (bytes(content) > MAX_EVENT_BYTES) {
    // Escaping can make the HTML five times the text (`&` is `&amp;`): plain text then.
    delete content.format;
    delete content.formatted_body;
  }
  return content;
}

/**
 * An edit (`m.replace`) of reply `replyId` to the new parts. Clients without
 * edits show only the top-level body, so, as the spec's fallback, it is the full
 * new text prefixed with `* ` (HTML too, when it fits), cut to fit
 * {@linkcode MAX_EVENT_BYTES} only when the output is that large.
 */
export function editContent(
  replyId: string,
  parts: ReplyParts,
): Record<string, unknown> {
  const full = replyContent(null, parts);
  const { "m.relates_to": _none, ...newContent } = full;
  const edit: Record<string, unknown> = {
    msgtype: "m.notice",
    body: `* ${full.body}`,
    ...(full.formatted_body === undefined ? {} : {
      format: "org.matrix.custom.html",
      formatted_body: `* ${full.formatted_body}`,
    }),
    "m.new_content": newContent,
    "m.relates_to": { rel_type: "m.replace", event_id: replyId },
  };
  if (bytes(edit) <= MAX_EVENT_BYTES) return edit;
  delete edit.format;
  delete edit.formatted_body;
  // Still too large: cut the output's end, keep the provenance line.
  const tail = parts.tail ? `\n${parts.tail}` : "";
  const note = "\n… (cut: the edited message has the whole output)";
  const text = edit.body as string;
  let head = text.slice(0, text.length - tail.length);
  while (bytes(edit) > MAX_EVENT_BYTES && head.length > 0) {
    head = head.slice(0, Math.max(0, head.length - (bytes(edit) - MAX_EVENT_BYTES) - note.length));
    if (/[\uD800-\uDBFF]$/.test(head)) head = head.slice(0, -1);
    edit.body = head + note + tail;
  }
  return edit;
}

/** `TIBET: <token id> | L4: <16 hex of the chain head> | #<seq>`, as `provenance()` writes it. */
export const PROVENANCE = /^TIBET: (\S+) \| L4: ([0-9a-f]+) \| #(\d+)/;

/**
 * The answer's facts as sent: `parts.answer` plus the provenance line's token
 * id, chain head prefix and record number; null for a reply with neither.
 */
export function answerFacts(
  parts: ReplyParts,
): (Partial<AnswerFacts> & { tibet_id?: string; l4?: string; seq?: number }) | null {
  const p = PROVENANCE.exec(parts.tail ?? "");
  if (!parts.answer && !p) return null;
  return {
    ...(parts.answer ?? {}),
    ...(p ? { tibet_id: p[1], l4: p[2], seq: Number(p[3]) } : {}),
  };
}
