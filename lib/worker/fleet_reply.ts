/**
 * How replies look in a fleet room (`TIBET_NC_FLEET=yes`): each agent answers
 * in a thread on the command, so the answers of many hosts stay together under
 * it, and names itself on the first line, since several agents answer one
 * command. Outside a fleet, replies are plain replies as they always were.
 * @module
 */

import type { Config } from "../config/config.ts";
import { editContent, relation, replyContent } from "../matrix/reply.ts";
import type { ReplyParts } from "./reply_parts.ts";

/** Builds the contents this agent sends. */
export interface ReplyShape {
  /** The reply to command `commandId`. */
  reply(commandId: string, parts: ReplyParts): Record<string, unknown>;
  /** An edit of reply `replyId` (an `m.replace`, which needs no thread relation of its own). */
  edit(replyId: string, parts: ReplyParts): Record<string, unknown>;
  /** A file reply's content, re-related like the others. */
  file(commandId: string, content: Record<string, unknown>): Record<string, unknown>;
}

/** The reply shape of this agent's configuration. */
export function replyShape(config: Pick<Config, "fleet" | "hostname">): ReplyShape {
  const { fleet, hostname } = config;
  const named = (p: ReplyParts): ReplyParts =>
    fleet ? { ...p, head: p.head ? `${hostname}: ${p.head}` : hostname } : p;
  return {
    reply: (commandId, parts) => replyContent(commandId, named(parts), fleet),
    edit: (replyId, parts) => editContent(replyId, named(parts)),
    file: (commandId, content) =>
      fleet ? { ...content, "m.relates_to": relation(commandId, true) } : content,
  };
}
