/**
 * Edits never act: `classify` ignores them. An edit that would approve or
 * reject a held command is the one kind still worth a record, since it may be
 * an attempt to pass an approval off as something else; this finds its text.
 * @module
 */

import type { Classified } from "./events.ts";
import { RULING } from "../monitor/approvals.ts";

/** The `approve ID` / `reject ID` text an ignored edit would have had, or null. */
export function editedRuling(c: Classified, content: Record<string, unknown>): string | null {
  if (c.kind !== "ignore" || c.why !== "an edit") return null;
  const body = (content["m.new_content"] as Record<string, unknown> | undefined)?.body;
  if (typeof body !== "string") return null;
  const text = body.trim().replace(/^\$\s+/, "");
  return RULING.test(text) ? text : null;
}
