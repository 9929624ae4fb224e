/**
 * Commands sent into the room and their answers as they arrive: the reply,
 * each edit of it (the running output), the files that come with it. Only
 * messages from the expected agent's device count; anything else claiming to
 * answer is ignored and reported once.
 * @module
 */

import {
  type MatrixClient,
  type MatrixEvent,
  MatrixEventEvent,
  MsgType,
  RoomEvent,
} from "matrix-js-sdk";
import { type Answer, readAnswer } from "./answer.ts";

/** Who may answer: the agent's user and its device's Curve25519 key (null: any device of it). */
export interface Answerer {
  user: string;
  curve25519: string | null;
}

/** One sent command and what has come back for it. */
export interface Tracked {
  commandId: string;
  /** The reply's current state, null until it comes. */
  answer: Answer | null;
  /** The sender and device key of the reply, once it came. */
  from: { user: string; curve25519: string | null } | null;
  /** `m.file` replies (output.txt, a `get`'s file), in order. */
  files: MatrixEvent[];
  /** Resolves when the answer is final. */
  done: Promise<Answer>;
  /** Called on every change of the answer (a new edit, a file). */
  onChange(fn: () => void): void;
}

/** The room's conversation with the agents. */
export interface Conversation {
  /** Sends `body` as a text message; returns what tracks its answer. */
  send(body: string, answerer: Answerer | null): Promise<Tracked>;
  /** Tracks the answer to an event sent some other way (a file with a caption). */
  track(commandId: string, answerer: Answerer | null): Tracked;
  /** Messages that claimed to answer but came from someone else. */
  onImpostor(fn: (ev: MatrixEvent) => void): void;
}

interface State extends Tracked {
  answerer: Answerer | null;
  replyId: string | null;
  /** The latest content by send time: edits may decrypt out of order. */
  latestTs: number;
  listeners: Set<() => void>;
  resolve: (a: Answer) => void;
}

/** Listens to `roomId`'s timeline for answers to the commands it sends. */
export function conversation(client: MatrixClient, roomId: string): Conversation {
  const me = client.getUserId()!;
  const byCommand = new Map<string, State>();
  const byReply = new Map<string, State>();
  /** Edits seen before their reply (a later event can decrypt first). */
  const early = new Map<string, MatrixEvent[]>();
  const impostorFns = new Set<(ev: MatrixEvent) => void>();
  const seen = new WeakSet<MatrixEvent>();

  const allowed = (s: State, ev: MatrixEvent) => {
    const a = s.answerer;
    // Not pinned yet: anyone but this user (whose other devices are no agent).
    if (!a) return ev.getSender() !== me;
    return ev.getSender() === a.user &&
      (a.curve25519 === null || ev.getSenderKey() === a.curve25519);
  };
  const changed = (s: State) => {
    for (const fn of s.listeners) fn();
    if (s.answer?.final) s.resolve(s.answer);
  };
  const applyEdit = (s: State, ev: MatrixEvent) => {
    if (!allowed(s, ev)) return impostor(ev);
    const ts = ev.getTs();
    if (ts < s.latestTs) return;
    s.latestTs = ts;
    const next = ev.getContent()["m.new_content"];
    if (next && typeof next === "object") {
      s.answer = readAnswer(next as Record<string, unknown>);
      changed(s);
    }
  };
  const impostor = (ev: MatrixEvent) => {
    for (const fn of impostorFns) fn(ev);
  };

  const note = (ev: MatrixEvent) => {
    if (ev.getRoomId() !== roomId || ev.isBeingDecrypted() || ev.isDecryptionFailure()) return;
    if (ev.getType() !== "m.room.message") return;
    if (!ev.isEncrypted() || seen.has(ev)) return;
    seen.add(ev);
    // The content as sent, not as the SDK shows it once an edit replaced it.
    const content = ev.getOriginalContent();
    const rel = content["m.relates_to"] as Record<string, unknown> | undefined;
    if (rel?.rel_type === "m.replace" && typeof rel.event_id === "string") {
      const s = byReply.get(rel.event_id);
      if (s) applyEdit(s, ev);
      else early.set(rel.event_id, [...(early.get(rel.event_id) ?? []), ev]);
      return;
    }
    const inReplyTo = (rel?.["m.in_reply_to"] as Record<string, unknown> | undefined)?.event_id;
    const s = typeof inReplyTo === "string" ? byCommand.get(inReplyTo) : undefined;
    if (!s) return;
    if (!allowed(s, ev)) return impostor(ev);
    if (content.msgtype === "m.file") {
      if (!s.files.includes(ev)) s.files.push(ev);
      return changed(s);
    }
    if (s.replyId !== null) return; // a second answer (another agent): the first stands
    s.replyId = ev.getId()!;
    s.from = { user: ev.getSender()!, curve25519: ev.getSenderKey() };
    s.answerer ??= { user: s.from.user, curve25519: s.from.curve25519 };
    s.latestTs = ev.getTs();
    byReply.set(s.replyId, s);
    s.answer = readAnswer(content);
    changed(s);
    for (const e of early.get(s.replyId) ?? []) applyEdit(s, e);
    early.delete(s.replyId);
  };
  client.on(RoomEvent.Timeline, note);
  client.on(MatrixEventEvent.Decrypted, note);

  const track = (commandId: string, answerer: Answerer | null): Tracked => {
    let resolve!: (a: Answer) => void;
    const done = new Promise<Answer>((r) => resolve = r);
    const s: State = {
      commandId,
      answer: null,
      from: null,
      files: [],
      done,
      answerer,
      replyId: null,
      latestTs: 0,
      listeners: new Set(),
      resolve,
      onChange: (fn) => s.listeners.add(fn),
    };
    byCommand.set(commandId, s);
    // Answers that arrived before the send returned its event id.
    for (const ev of client.getRoom(roomId)?.getLiveTimeline().getEvents() ?? []) {
      seen.delete(ev);
      note(ev);
    }
    return s;
  };

  return {
    async send(body, answerer) {
      const { event_id } = await client.sendMessage(roomId, { msgtype: MsgType.Text, body });
      return track(event_id, answerer);
    },
    track,
    onImpostor: (fn) => impostorFns.add(fn),
  };
}
