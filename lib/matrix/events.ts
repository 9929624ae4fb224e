/**
 * Which Matrix messages are commands: decrypted
 * `m.room.message` / `m.text`, not our own, not an edit, with the prefix rule of
 * the original tibet-nc.
 * @module
 */

/** The facts of one event that decide whether it is a command. */
export interface MessageFacts {
  sender: string;
  /** True when the event arrived as `m.room.encrypted` and decrypted cleanly. */
  encrypted: boolean;
  /** Decrypted event type. */
  type: string;
  content: Record<string, unknown>;
  roomId: string;
}

/** Why a message is not a command, or the command text. */
export type Classified =
  | { kind: "command"; text: string }
  | { kind: "ignore"; why: string };

/** Longest command text accepted; longer bodies are not commands. */
export const MAX_COMMAND_CHARS = 4096;

/**
 * Classifies a message. Outside `controlRoom` a command must start with `$ `;
 * inside it, bare text is a command too.
 */
export function classify(
  m: MessageFacts,
  ownUserId: string,
  controlRoom: string | null,
): Classified {
  if (m.sender === ownUserId) return { kind: "ignore", why: "own message" };
  if (!m.encrypted) return { kind: "ignore", why: "not end-to-end encrypted" };
  if (m.type !== "m.room.message") return { kind: "ignore", why: `event type ${m.type}` };
  const c = m.content;
  const rel = c["m.relates_to"];
  if (rel && typeof rel === "object" && (rel as Record<string, unknown>).rel_type === "m.replace") {
    return { kind: "ignore", why: "an edit" };
  }
  if ("m.new_content" in c) return { kind: "ignore", why: "an edit" };
  if (c.msgtype !== "m.text") return { kind: "ignore", why: `msgtype ${String(c.msgtype)}` };
  if (typeof c.body !== "string") return { kind: "ignore", why: "body is not a string" };
  if (c.body.length > MAX_COMMAND_CHARS) return { kind: "ignore", why: "body too long" };
  const body = stripReplyFallback(c.body).trim();
  if (body.startsWith("$ ")) {
    const text = body.slice(2).trim();
    return text ? { kind: "command", text } : { kind: "ignore", why: "empty command" };
  }
  if (controlRoom !== null && m.roomId === controlRoom && body !== "") {
    return { kind: "command", text: body };
  }
  return { kind: "ignore", why: "no `$ ` prefix" };
}

/** Drops the quoted `> ` lines clients put before the text of a reply. */
function stripReplyFallback(body: string): string {
  if (!body.startsWith("> ")) return body;
  const lines = body.split("\n");
  let i = 0;
  while (i < lines.length && lines[i].startsWith(">")) i++;
  return lines.slice(i).join("\n");
}
