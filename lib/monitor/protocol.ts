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

/** Worker -> monitor. */
export type ToMonitor =
  | { type: "ready" }
  | { type: "stopped" }
  /** `config`: a setting is wrong (token, device, user): restarting cannot help. */
  | { type: "fatal"; message: string; config?: boolean }
  | { type: "run"; id: number; origin: CommandOrigin }
  | { type: "record"; id: number; origin: CommandOrigin; entry: RecordEntry }
  | { type: "cancel"; id: number; reason: string }
  | { type: "interrupted"; id: number; unfinished: Unfinished[] };

/** Monitor -> worker. Every message after an append carries the new chain head. */
export type ToWorker =
  | { type: "start"; config: Config; execAs: string; verbose: boolean; chain: ChainInfo }
  | { type: "stop" }
  | { type: "progress"; id: number; elapsedMs: number; text: string }
  | { type: "final"; id: number; ran: boolean; parts: ReplyParts; head: ChainHead }
  | { type: "recorded"; id: number; tail: string; head: ChainHead }
  | { type: "answers"; id: number; answers: InterruptedAnswer[]; head: ChainHead };

/** What the worker may know of the chain: for `status` and `chain`, never the key. */
export interface ChainInfo {
  head: ChainHead;
  pubkeyHex: string;
}
