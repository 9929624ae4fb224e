/**
 * The previous run's claims that never got a final reply: the monitor says
 * what became of each (from the audit log), and each is answered once;
 * strangers' are dropped unanswered.
 * @module
 */

import type { SeenEvents } from "../airlock/replay.ts";
import type { Monitor } from "./monitor_client.ts";
import type { Replier } from "./reply_parts.ts";

/** What answering needs. */
export interface InterruptedDeps {
  seen: SeenEvents;
  monitor: Monitor;
  allowedUsers: string[];
  replier: (roomId: string, eventId: string) => Replier;
  log: (msg: string) => void;
}

/** Answers every unfinished command of an allowed operator, once. */
export async function answerInterrupted(d: InterruptedDeps): Promise<void> {
  const all = d.seen.takeUnfinished();
  const mine = all.filter((u) => d.allowedUsers.includes(u.sender));
  for (const u of all) if (!mine.includes(u)) d.seen.done(u.eventId);
  if (mine.length === 0) return;
  const rooms = new Map(mine.map((u) => [u.eventId, u.roomId]));
  for (const a of await d.monitor.interrupted(mine)) {
    const roomId = rooms.get(a.eventId);
    if (!roomId) continue;
    try {
      await d.replier(roomId, a.eventId).send(a.parts);
      d.seen.done(a.eventId);
      d.log(`answered ${a.eventId} of the previous run: ${a.parts.head}`);
    } catch (e) {
      d.log(`cannot answer ${a.eventId} of the previous run: ${(e as Error).message}`);
    }
  }
}
