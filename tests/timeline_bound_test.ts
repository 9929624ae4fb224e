import assert from "node:assert/strict";
import { createClient, EventTimeline, MatrixEvent, Room } from "matrix-js-sdk";
import { trimTimeline } from "../lib/matrix/timeline_bound.ts";

const ME = "@agent:example.org";
const OP = "@op:example.org";

function state(type: string, stateKey: string, content: Record<string, unknown>): MatrixEvent {
  return new MatrixEvent({
    type,
    state_key: stateKey,
    content,
    sender: OP,
    room_id: "!r:example.org",
    event_id: `$${type}-${stateKey}`,
    origin_server_ts: 1,
  });
}

function message(i: number): MatrixEvent {
  return new MatrixEvent({
    type: "m.room.message",
    content: { msgtype: "m.text", body: `$ echo ${i}` },
    sender: OP,
    room_id: "!r:example.org",
    event_id: `$m${i}`,
    origin_server_ts: 10 + i,
  });
}

/** A room as the SDK holds it after a sync: state, then `n` messages on its live timeline. */
async function roomWith(n: number): Promise<Room> {
  const client = createClient({ baseUrl: "http://127.0.0.1:1", userId: ME });
  const room = new Room("!r:example.org", client, ME);
  room.getLiveTimeline().getState(EventTimeline.FORWARDS)!.setStateEvents([
    state("m.room.create", "", { creator: OP }),
    state("m.room.member", OP, { membership: "join" }),
    state("m.room.member", ME, { membership: "join" }),
    state("m.room.encryption", "", { algorithm: "m.megolm.v1.aes-sha2" }),
  ]);
  room.updateMyMembership("join"); // as the sync sets it
  await room.addLiveEvents(Array.from({ length: n }, (_, i) => message(i)), { addToState: false });
  return room;
}

Deno.test("a room's timeline under the limit is left as it is", async () => {
  const room = await roomWith(10);
  assert.equal(trimTimeline(room, 500), false);
  assert.equal(room.getLiveTimeline().getEvents().length, 10);
});

Deno.test("past the limit the events are dropped, the room's state is kept, and new events land", async () => {
  const room = await roomWith(501);
  assert.equal(trimTimeline(room, 500), true);
  assert.equal(room.getLiveTimeline().getEvents().length, 0);
  assert.equal(room.findEventById("$m0"), undefined, "the old events are no longer held");
  assert.equal(room.getMember(OP)?.membership, "join");
  assert.equal(room.getMyMembership(), "join");
  assert.ok(room.hasEncryptionStateEvent(), "the room is still known to be encrypted");
  await room.addLiveEvents([message(1000)], { addToState: false });
  assert.deepEqual(room.getLiveTimeline().getEvents().map((e) => e.getId()), ["$m1000"]);
});
