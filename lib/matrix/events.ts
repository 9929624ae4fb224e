/**
 * Which Matrix messages are commands: decrypted
 * `m.room.message` / `m.text`, not our own, not an edit, with the prefix rule of
 * the original tibet-nc; and files whose caption is one (`$ put DIR`).
 * @module
 */

import { type Selector, splitTarget } from "./target.ts";

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

/** A file sent with a command as its caption (`$ put DIR`). */
export interface Attachment {
  /** The file name the sender gave (`filename`). */
  name: string;
  /** The size the sender announced (`info.size`), -1 when absent. */
  size: number;
  /** The `EncryptedFile` (`file`), or null when the file was sent in the clear (`url`). */
  file: unknown;
}

/**
 * Why a message is not a command, or the command text (and its attachment), and
 * the agents it names (`@web-1 $ …`, target.ts), absent when it names none.
 */
export type Classified =
  | { kind: "command"; text: string; attachment?: Attachment; target?: Selector[] }
  | { kind: "ignore"; why: string };

/**
 * Built-ins that only report, and so may follow a target without the `$ `
 * (`@all hosts`); anything else after a target needs it, so a chat line that
 * mentions a host never runs there.
 */
const BARE_AFTER_TARGET = new Set(["hosts", "status", "help", "chain", "jobs"]);

/** Message types that carry a file (`m.file` and its media kinds). */
const FILE_TYPES = new Set(["m.file", "m.image", "m.video", "m.audio"]);

/** Longest command text accepted; longer bodies are not commands. */
export const MAX_COMMAND_CHARS = 4096;

/**
 * Classifies a message. Outside `controlRoom` a command must start with `$ `
 * (after its target, if any); inside it, bare text is a command too.
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
  if (typeof c.msgtype === "string" && FILE_TYPES.has(c.msgtype)) {
    return classifyFile(c, m.roomId === controlRoom);
  }
  if (c.msgtype !== "m.text") return { kind: "ignore", why: `msgtype ${String(c.msgtype)}` };
  if (typeof c.body !== "string") return { kind: "ignore", why: "body is not a string" };
  if (c.body.length > MAX_COMMAND_CHARS) return { kind: "ignore", why: "body too long" };
  const split = splitTarget(stripReplyFallback(c.body).trim());
  if (split === null) return { kind: "ignore", why: "an @ word that is no target" };
  const { target, rest: body } = split;
  const command = (text: string): Classified =>
    target ? { kind: "command", text, target } : { kind: "command", text };
  if (body.startsWith("$ ")) {
    const text = body.slice(2).trim();
    return text ? command(text) : { kind: "ignore", why: "empty command" };
  }
  if (controlRoom !== null && m.roomId === controlRoom && body !== "") return command(body);
  if (target !== null && BARE_AFTER_TARGET.has(body.toLowerCase())) return command(body);
  return { kind: "ignore", why: "no `$ ` prefix" };
}

/**
 * A file is a command only through its caption: the spec's `body` when a
 * `filename` is given and differs from it. The caption is inside the encrypted
 * content, so the homeserver cannot bind the file to another command (a
 * reply's relation travels in the clear).
 */
function classifyFile(c: Record<string, unknown>, control: boolean): Classified {
  if (typeof c.filename !== "string" || typeof c.body !== "string" || c.body === c.filename) {
    return { kind: "ignore", why: "a file without a caption" };
  }
  const split = splitTarget(c.body.trim());
  if (split === null) return { kind: "ignore", why: "a file whose caption is no command" };
  const caption = split.rest;
  const text = caption.startsWith("$ ") ? caption.slice(2).trim() : control ? caption : "";
  if (text === "" || text.length > MAX_COMMAND_CHARS) {
    return { kind: "ignore", why: "a file whose caption is no command" };
  }
  const info = c.info as Record<string, unknown> | undefined;
  const size = typeof info?.size === "number" && Number.isSafeInteger(info.size) ? info.size : -1;
  return {
    kind: "command",
    text,
    attachment: { name: c.filename, size, file: "file" in c ? c.file : null },
    ...(split.target ? { target: split.target } : {}),
  };
}

/** Drops the quoted `> ` lines clients put before the text of a reply. */
function stripReplyFallback(body: string): string {
  if (!body.startsWith("> ")) return body;
  const lines = body.split("\n");
  let i = 0;
  while (i < lines.length && lines[i].startsWith(">")) i++;
  return lines.slice(i).join("\n");
}
