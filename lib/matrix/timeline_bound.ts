/**
 * Keeping the Matrix SDK's memory bounded. matrix-js-sdk keeps every event a
 * room's live timeline is given for as long as the client runs (its issues #247
 * and #298): about 200 KB a command here, without end. The agent acts on each
 * event as it arrives and never reads a timeline back, so past a limit the live
 * timeline is replaced by an empty one that starts from the room's current state.
 * @module
 */

import { ClientEvent, type MatrixClient, type Room, RoomEvent, SyncState } from "matrix-js-sdk";

/** Events a room's live timeline may hold before it is cut. */
export const TIMELINE_KEEP_EVENTS = 500;

/**
 * Replaces the live timeline of `room` with an empty one once it holds more
 * than `max` events; the room's state (members, encryption) carries over.
 * Returns true when it did.
 */
export function trimTimeline(room: Room, max: number = TIMELINE_KEEP_EVENTS): boolean {
  if (room.getLiveTimeline().getEvents().length <= max) return false;
  room.resetLiveTimeline(null, null);
  return true;
}

/**
 * After each sync, trims every room's timeline ({@linkcode trimTimeline}).
 * `onGap` hears of the resets the SDK makes itself (a sync that skipped events),
 * never of these cuts.
 */
export function boundTimelines(
  client: MatrixClient,
  onGap: (room: Room) => void,
  max: number = TIMELINE_KEEP_EVENTS,
): void {
  let cutting = false;
  client.on(RoomEvent.TimelineReset, (room: Room | undefined) => {
    if (!cutting && room) onGap(room);
  });
  client.on(ClientEvent.Sync, (state: SyncState) => {
    if (state !== SyncState.Syncing) return;
    cutting = true;
    try {
      for (const room of client.getRooms()) trimTimeline(room, max);
    } finally {
      cutting = false;
    }
  });
}
