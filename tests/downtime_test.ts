/**
 * Nothing answered in silence: a command sent while the agent was down, and
 * older than TIBET_NC_TIMEBOX when the agent is back, is answered "expired";
 * what the previous run already answered is not answered again.
 */
import assert from "node:assert/strict";
import { startWorld } from "./support/fixture.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test(
  "a command sent while the agent was down is answered expired, not dropped",
  opts,
  async () => {
    const w = await startWorld({ TIBET_NC_TIMEBOX: "3" });
    try {
      const { operator } = w;
      const room = await operator.createRoom([w.agentUser.userId]);
      await operator.waitForJoin(room, w.agentUser.userId);
      const before = await operator.send(room, "$ echo before-the-stop");
      assert.match(await operator.waitForFinal(room, before), /before-the-stop/);
      await sleep(2500); // the sync mark is written every 2 s
      let whileDown = "";
      await w.restartAgent("SIGTERM", async () => {
        whileDown = await operator.send(room, "$ echo sent-while-down");
        await sleep(4000); // past the 3 s timebox before the agent is back
      });
      const answer = await operator.waitForFinal(room, whileDown, 60_000);
      assert.match(
        answer,
        /^refused \(deny\.expired\): expired: .*arrived while the agent was not running/,
      );
      assert.doesNotMatch(answer, /^sent-while-down$/m, "it did not run");
      // The command the previous run answered gets no second answer.
      await sleep(2000);
      const replies = operator.notices(room).filter((ev) =>
        ev.getOriginalContent()["m.relates_to"]?.["m.in_reply_to"]?.event_id === before
      );
      assert.equal(replies.length, 1, "the earlier command was answered once");
    } finally {
      await w.close();
    }
  },
);
