/**
 * Reply contents: `m.notice` (bots must not trigger other bots), an HTML
 * `<pre><code>` body with a plain-text fallback, threaded to the command by
 * `m.in_reply_to`.
 * @module
 */

/** A reply message content. */
export interface ReplyContent {
  msgtype: "m.notice";
  body: string;
  format: "org.matrix.custom.html";
  formatted_body: string;
  "m.relates_to"?: { "m.in_reply_to": { event_id: string } };
  [key: string]: unknown;
}

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
  parts: { head?: string; pre?: string; tail?: string },
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
  if (inReplyTo) content["m.relates_to"] = { "m.in_reply_to": { event_id: inReplyTo } };
  return content;
}

/**
 * An edit (`m.replace`) of reply `replyId` to the new parts. The top-level body is
 * only the fallback for clients without edits, so it stays short.
 */
export function editContent(
  replyId: string,
  parts: { head?: string; pre?: string; tail?: string },
): Record<string, unknown> {
  const full = replyContent(null, parts);
  const { "m.relates_to": _none, ...newContent } = full;
  return {
    msgtype: "m.notice",
    body: `* ${parts.head ?? "(edited)"}`,
    "m.new_content": newContent,
    "m.relates_to": { rel_type: "m.replace", event_id: replyId },
  };
}
