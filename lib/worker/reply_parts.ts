/**
 * The parts of a reply and the interface that sends and edits replies, shared by
 * the Matrix side (`matrix_worker.ts`) and the command side (`handler.ts`).
 * @module
 */

import type { Attachment } from "../matrix/events.ts";
import type { Selector } from "../matrix/target.ts";

/**
 * What kind of answer a reply is, for programs (`tibet-nc connect`, scripts):
 * sent as the content's `org.tibet-nc.answer`, with the provenance line's
 * facts added (`tibet_id`, `l4`, `seq`). A person reads the text; this is the
 * same answer as data, so no client has to parse the words.
 */
export interface AnswerFacts {
  /**
   * `running`: a progress edit follows. `held`: waits for another operator's
   * approval. `exited`: the command ran and ended (`exit_code`). `done`: a
   * built-in, a file transfer or an approval given. `refused` and `expired`:
   * not run (`rule`). `failed`: recorded as run, but it did not start or was
   * interrupted.
   */
  status: "running" | "held" | "exited" | "done" | "refused" | "expired" | "failed";
  exit_code?: number | null;
  duration_ms?: number;
  rule?: string;
  timed_out?: boolean;
  cancelled?: boolean;
}

/** What a reply says: a heading line, a preformatted block, a trailer line, and its facts. */
export interface ReplyParts {
  head?: string;
  pre?: string;
  tail?: string;
  answer?: AnswerFacts;
}

/** Sends replies to one command. */
export interface Replier {
  /** Sends a reply to the command; returns the reply's event id. */
  send(parts: ReplyParts): Promise<string>;
  /** Replaces the content of an earlier reply (an `m.replace` edit). */
  edit(replyId: string, parts: ReplyParts): Promise<void>;
  /** Encrypts and uploads `size` bytes of `body`, and replies with it as the file `name`. */
  sendFile(name: string, size: number, body: ReadableStream<Uint8Array>): Promise<string>;
}

/** A command as the Matrix side hands it over. */
export interface IncomingCommand {
  text: string;
  sender: string;
  roomId: string;
  eventId: string;
  originTs: number;
  /** The agents it names (`@web-1 $ …`); absent when it names none, or is unreadable. */
  target?: Selector[];
  /** The file the command came with, as its caption (`$ put DIR`). */
  attachment?: Attachment;
  /** Downloads and decrypts that file; the stream errors when its hash does not match. */
  fetchAttachment?: () => Promise<ReadableStream<Uint8Array>>;
  /** An edit that would approve or reject: judged, recorded as refused, never acted on. */
  edit?: boolean;
  /** Set when the Matrix side already knows the command must be refused (untrusted device). */
  refusal?: { rule: string; reason: string };
  /**
   * Judges the sender's trust with fresh keys; called only for a command that
   * is new and not history, since it may wait for a key query.
   */
  judge?: () => Promise<{ rule: string; reason: string } | undefined>;
}

/** Handles one incoming command, replying through `reply`. */
export type CommandHandler = (cmd: IncomingCommand, reply: Replier) => Promise<void>;
