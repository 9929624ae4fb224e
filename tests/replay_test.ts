import assert from "node:assert/strict";
import { openSeenEvents } from "../lib/airlock/replay.ts";

const DAY = 86_400_000;
const from = { roomId: "!room:hs", sender: "@op:hs" };

async function seenFile(): Promise<string> {
  return `${await Deno.makeTempDir()}/seen-events`;
}

Deno.test("an event id is claimed once, also across a reopen", async () => {
  const path = await seenFile();
  let seen = openSeenEvents(path, DAY);
  assert.equal(seen.claim("$a", Date.now(), from), true);
  assert.equal(seen.claim("$a", Date.now(), from), false);
  seen.close();
  seen = openSeenEvents(path, DAY);
  assert.equal(seen.has("$a"), true);
  assert.equal(seen.claim("$a", Date.now()), false);
  assert.equal(seen.claim("$with space", Date.now()), false, "an id that would break the file");
  seen.close();
  assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
});

Deno.test("claims without a final reply are handed to the next run once, with room and sender", async () => {
  const path = await seenFile();
  const now = Date.now();
  let seen = openSeenEvents(path, DAY);
  seen.claim("$answered", now, from);
  seen.done("$answered");
  seen.claim("$cut-off", now + 1, from);
  seen.claim("$stranger", now + 2); // claimed without a source: never answered
  seen.close();

  seen = openSeenEvents(path, DAY);
  // History replayed by the first sync is handled (and "done") before the take.
  seen.done("$cut-off");
  assert.deepEqual(seen.takeUnfinished(), [
    { eventId: "$cut-off", originTs: now + 1, roomId: from.roomId, sender: from.sender },
  ]);
  assert.deepEqual(seen.takeUnfinished(), [], "handed out once per run");
  seen.close();

  // Not answered in that run either (killed again): still unfinished.
  seen = openSeenEvents(path, DAY);
  assert.equal(seen.takeUnfinished().length, 1);
  seen.done("$cut-off");
  seen.close();
  seen = openSeenEvents(path, DAY);
  assert.deepEqual(seen.takeUnfinished(), []);
  assert.equal(seen.has("$cut-off"), true);
  seen.close();
});

Deno.test("a torn last line and old-format lines are read; old ids are dropped at reopen", async () => {
  const path = await seenFile();
  const now = Date.now();
  await Deno.writeTextFile(
    path,
    `${now - 2 * DAY} $old\n${now} $plain\n${now} $new !r:hs @op:hs\n${now} $to`,
  );
  let seen = openSeenEvents(path, DAY, now);
  assert.equal(seen.has("$old"), true, "still refused in the run that reads it");
  assert.equal(seen.has("$plain"), true);
  assert.equal(seen.has("$to"), false, "a torn line is no claim");
  assert.deepEqual(seen.takeUnfinished().map((u) => u.eventId), ["$new"]);
  seen.close();
  seen = openSeenEvents(path, DAY, now);
  assert.equal(seen.has("$old"), false);
  assert.equal(seen.has("$new"), true);
  seen.close();
});
