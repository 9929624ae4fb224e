/**
 * Messages between the monitor (main thread: holds the signing key and the audit
 * log, may start processes) and the Matrix worker (Matrix, E2EE, airlock: may do
 * neither). The worker sends what the operator typed and what it refused; the
 * monitor parses, judges, records and runs, and pushes progress and the final
 * reply back. A compromised worker can ask, but cannot choose what runs nor
 * write or sign a record. See ARCHITECTURE.md.
 * @module
 */

import type { Config } from "../config/config.ts";
import type { ChainHead } from "../audit/record.ts";
import type { Unfinished } from "../airlock/replay.ts";
import type { ReplyParts } from "../worker/reply_parts.ts";
import type { InterruptedAnswer } from "./interrupted.ts";

/** Where a command came from; every record names it. */
export interface CommandOrigin {
  sender: string;
  roomId: string;
  eventId: string;
  /** The message as typed (`timeout=N` prefix included). */
  text: string;
}

/**
 * What the worker asks the monitor to record without running anything: a
 * refusal it decided (sender, device, freshness, limits), or a built-in that acts.
 */
export type RecordEntry =
  | { kind: "deny"; rule: string; reason: string }
  | { kind: "exit" }
  | { kind: "cancel" };

/**
 * The attachment a `put` came with, as the worker saw it; the monitor counts the
 * bytes itself and judges the name.
 */
export interface AttachmentInfo {
  name: string;
  /** Size the sender announced. */
  size: number;
  /** False for an attachment sent in the clear (refused). */
  encrypted: boolean;
  /** Why an encrypted attachment cannot be used (a malformed key), if so. */
  unusable?: string;
}

/**
 * File bytes of run `id`, either way (`lib/monitor/file_channel.ts`): data in
 * order, at most a window of chunks unacknowledged, then an end, with the reason
 * when the bytes are not whole (a failed read, a hash that does not match).
 */
export type FileChunk =
  | { type: "file-data"; id: number; bytes: Uint8Array }
  | { type: "file-end"; id: number; error?: string; rule?: string }
  | { type: "file-ack"; id: number };

/** Worker -> monitor. */
export type ToMonitor =
  | { type: "ready" }
  | { type: "stopped" }
  /** `config`: a setting is wrong (token, device, user): restarting cannot help. */
  | { type: "fatal"; message: string; config?: boolean }
  | { type: "run"; id: number; origin: CommandOrigin; attachment?: AttachmentInfo }
  /** The file the monitor sent (`file-out`) is in the room, or why not. */
  | { type: "file-sent"; id: number; error?: string }
  | FileChunk
  | { type: "record"; id: number; origin: CommandOrigin; entry: RecordEntry }
  | { type: "cancel"; id: number; reason: string }
  | { type: "interrupted"; id: number; unfinished: Unfinished[] };

/** Monitor -> worker. Every message after an append carries the new chain head. */
export type ToWorker =
  | { type: "start"; config: Config; execAs: string; verbose: boolean; chain: ChainInfo }
  | { type: "stop" }
  | { type: "progress"; id: number; elapsedMs: number; text: string }
  /** Run `id` waits for another operator's approval; `parts` says how to give it. */
  | { type: "held"; id: number; parts: ReplyParts; head: ChainHead }
  | { type: "final"; id: number; ran: boolean; parts: ReplyParts; head: ChainHead }
  | { type: "recorded"; id: number; tail: string; head: ChainHead }
  | { type: "answers"; id: number; answers: InterruptedAnswer[]; head: ChainHead }
  /** Run `id` sends a file to the room (get, output.txt): its bytes follow. */
  | { type: "file-out"; id: number; name: string; size: number }
  /** Run `id` wants the bytes of its attachment (put). */
  | { type: "file-in"; id: number }
  | FileChunk;

/** What the worker may know of the chain: for `status` and `chain`, never the key. */
export interface ChainInfo {
  head: ChainHead;
  pubkeyHex: string;
}
