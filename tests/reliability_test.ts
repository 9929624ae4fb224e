import assert from "node:assert/strict";
import { startWorld } from "./support/fixture.ts";
import { agentKillScenario, errorLines, homeserverKillScenario } from "../bench/chaos.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const ENV = { TIBET_NC_RATE_LIMIT: "100000", TIBET_NC_MAX_CONCURRENT: "64" };
const log = (msg: string) => console.log(msg);

Deno.test(
  "Synapse SIGKILLed while a command runs: the agent reconnects, answers once, runs once",
  opts,
  async (t) => {
    const w = await startWorld(ENV);
    try {
      const { operator } = w;
      const agentId = w.agentUser.userId;
      const room = await operator.createRoom([agentId]);
      await operator.waitForJoin(room, agentId);
      const warm = await operator.send(room, "$ echo warm");
      await operator.waitForFinal(room, warm);

      await t.step("a command that ends after Synapse is back is answered once", async () => {
        const r = await homeserverKillScenario(w, room, { endDuringOutage: false });
        log(`outage ${r.outageMs} ms, final reply ${r.replyMs} ms after sending`);
      });

      await t.step({
        name: "a command that ends while Synapse is down is answered once",
        fn: async () => {
          const r = await homeserverKillScenario(w, room, { endDuringOutage: true });
          log(`outage ${r.outageMs} ms, final reply ${r.replyMs} ms after sending`);
        },
      });

      await t.step("the agent still answers and logged no unexpected error", async () => {
        const id = await operator.send(room, "$ echo still-here");
        assert.match(await operator.waitForFinal(room, id), /still-here/);
        assert.deepEqual(errorLines(w.agent.lines), []);
      });
    } finally {
      await w.close();
    }
  },
);

Deno.test(
  "agent SIGKILLed at random moments: it restarts, decrypts, answers, and never replays",
  opts,
  async () => {
    const w = await startWorld(ENV);
    try {
      const { operator } = w;
      const agentId = w.agentUser.userId;
      const room = await operator.createRoom([agentId]);
      await operator.waitForJoin(room, agentId);
      const seed = Deno.env.get("TIBET_NC_CHAOS_SEED");
      const r = await agentKillScenario(w, room, {
        cycles: 6,
        seed: seed ? Number(seed) : undefined,
        log,
      });
      log(`agent kill scenario: ${JSON.stringify(r)}`);
    } finally {
      await w.close();
    }
  },
);
