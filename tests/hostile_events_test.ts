/**
 * 5,000 hostile event contents from the allowed operator. Through Synapse, with
 * real E2EE, a local homeserver takes about 30-50 encrypted events a second on a
 * 2-core machine, so 5,000 would take minutes: `deno task test` sends the first
 * TIBET_NC_HOSTILE_E2E (default 1,000) end to end, and all 5,000 through the
 * agent's own classifier and handler in-process (real airlock, policy, audit log
 * and PTY execution via the monitor; only Matrix is left out).
 * `deno run -A bench/soak.ts` sends all 5,000 end to end.
 * @module
 */

import assert from "node:assert/strict";
import { startWorld } from "./support/fixture.ts";
import {
  CANARY,
  handleInProcess,
  hostileCorpus,
  judgeOutcome,
  type Outcome,
  sendCorpus,
} from "../bench/hostile_corpus.ts";
import { auditTokens, errorLines } from "../bench/chaos.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const TOTAL = 5000;
const E2E = Number(Deno.env.get("TIBET_NC_HOSTILE_E2E") ?? 1000);

function printOutcome(o: Outcome): void {
  for (const [kind, k] of [...o.byKind].sort(([a], [b]) => a.localeCompare(b))) {
    console.log(
      `  ${kind.padEnd(26)} ${k.expect.padEnd(6)} sent ${k.sent} not-sent ${k.failed} ` +
        `ran ${k.ran} refused ${k.refused}`,
    );
  }
}

Deno.test(
  `${TOTAL} hostile event contents: nothing crashes, the canary never runs, the agent still answers`,
  opts,
  async (t) => {
    const w = await startWorld({
      TIBET_NC_RATE_LIMIT: "100000",
      TIBET_NC_MAX_CONCURRENT: "64",
      // The agent may fall behind a flood; commands must not expire meanwhile.
      TIBET_NC_TIMEBOX: "600",
    });
    let exited = false;
    w.agent.status.then(() => exited = true);
    const marker = `${w.stateDir}.canary-ran`;
    try {
      await Deno.writeTextFile(
        `${w.binDir}/${CANARY}`,
        `#!/bin/sh\ntouch '${marker}'\necho canary ran\n`,
        { mode: 0o755 },
      );

      await t.step(`${E2E} through Synapse, end-to-end encrypted`, async () => {
        const { operator } = w;
        const agentId = w.agentUser.userId;
        const room = await operator.createRoom([agentId]);
        await operator.waitForJoin(room, agentId);
        const first = await operator.send(room, "$ echo warm");
        await operator.waitForFinal(room, first);
        // The SDK's scheduler sends room messages one at a time; without it they
        // go out concurrently (and without retries, which a local Synapse does not need).
        operator.client.scheduler = undefined;

        const started = Date.now();
        const sent = await sendCorpus(
          {
            client: operator.client,
            roomId: room,
            homeserver: w.synapse.url,
            accessToken: w.operatorUser.accessToken,
            operatorId: operator.userId,
          },
          hostileCorpus(E2E),
          8,
        );
        const sendMs = Date.now() - started;
        // A normal command after the flood is answered: the agent caught up and works.
        const ok = await operator.send(room, "$ echo ok");
        assert.match(await operator.waitForFinal(room, ok, 180_000), /^ok$/m);
        const answeredMs = Date.now() - started;
        await new Promise((r) => setTimeout(r, 1000)); // late records of the flood

        const outcome = judgeOutcome(sent, await auditTokens(w.stateDir), true);
        console.log(
          `${sent.length} events sent in ${sendMs} ms; \`$ echo ok\` answered ${answeredMs} ms ` +
            `after the first`,
        );
        printOutcome(outcome);
        assert.equal(sent.length, E2E);
        assert.equal(exited, false, "the agent process is alive");
        assert.deepEqual(errorLines(w.agent.lines), [], "no unexpected error in the agent's log");
        await assert.rejects(Deno.stat(marker), Deno.errors.NotFound, "the canary ran");
        assert.deepEqual(outcome.wrong, [], "events whose outcome contradicts their case");
      });

      await t.step("an edit sent while the agent is down never replaces its command", async () => {
        // After a restart the first sync delivers a command and its edit together;
        // the SDK may apply the edit to the command's content before the agent reads it.
        const { operator } = w;
        const room = await operator.createRoom([w.agentUser.userId]);
        await operator.waitForJoin(room, w.agentUser.userId);
        await w.agent.kill("SIGKILL");
        const id = await operator.send(room, "$ echo original");
        await (operator.client.sendEvent as unknown as (
          r: string,
          t: string,
          c: Record<string, unknown>,
        ) => Promise<unknown>).call(operator.client, room, "m.room.message", {
          msgtype: "m.text",
          body: `* $ ${CANARY}`,
          "m.new_content": { msgtype: "m.text", body: `$ ${CANARY}` },
          "m.relates_to": { rel_type: "m.replace", event_id: id },
        });
        await w.restartAgent("SIGKILL");
        exited = false;
        w.agent.status.then(() => exited = true);
        assert.match(await operator.waitForFinal(room, id), /^original$/m);
        await assert.rejects(Deno.stat(marker), Deno.errors.NotFound, "the canary ran");
      });

      await t.step(`all ${TOTAL} through the classifier and handler in-process`, async () => {
        const started = Date.now();
        const r = await handleInProcess(hostileCorpus(TOTAL), {
          binDir: w.binDir,
          operatorId: w.operatorUser.userId,
          agentId: w.agentUser.userId,
        });
        const outcome = judgeOutcome(r.sent, r.tokens, false);
        console.log(
          `${r.sent.length} events in ${Date.now() - started} ms: ${r.commands} commands, ` +
            `${r.replies} replies, largest reply ${r.largestReplyBytes} bytes`,
        );
        printOutcome(outcome);
        assert.equal(r.sent.length, TOTAL);
        assert.deepEqual(r.errors, [], "the handler threw");
        await assert.rejects(Deno.stat(marker), Deno.errors.NotFound, "the canary ran");
        assert.deepEqual(outcome.wrong, [], "events whose outcome contradicts their case");
        assert.ok(r.largestReplyBytes < 60_000, "every reply fits into one Matrix event");
      });
    } finally {
      await Deno.remove(marker).catch(() => {});
      await w.close();
    }
  },
);
