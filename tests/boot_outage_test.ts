import assert from "node:assert/strict";
import { startWorld } from "./support/fixture.ts";
import { startAgentProcess } from "./support/agent_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
/** How long the homeserver stays down while the agent boots: longer than any start limit. */
const OUTAGE_MS = 60_000;

Deno.test(
  "an agent that boots while its homeserver is down waits for it, then answers",
  opts,
  async (t) => {
    const w = await startWorld();
    try {
      const room = await w.operator.createRoom([w.agentUser.userId]);
      let attempts = 0;
      await t.step(
        "down 60 s at start: the agent retries, logs each attempt, stays up",
        async () => {
          await w.restartAgent("SIGTERM", () => w.synapse.down(), async (agent) => {
            let exited: Deno.CommandStatus | null = null;
            agent.status.then((s) => exited = s);
            await agent.waitFor(/^reaching http:\S+ \(whoami\) failed \(.*\); retrying in/);
            await new Promise((r) => setTimeout(r, OUTAGE_MS));
            assert.equal(
              exited,
              null,
              `the agent exited while the homeserver was down:\n${agent.lines.join("\n")}`,
            );
            attempts = agent.lines.filter((l) => /\(whoami\) failed/.test(l)).length;
            await w.synapse.up();
          });
          assert.ok(attempts >= 4, `${attempts} attempts in ${OUTAGE_MS / 1000} s`);
          const waits = w.agent.lines.filter((l) => /\(whoami\) failed/.test(l))
            .map((l) => Number(l.match(/retrying in (\S+) s/)?.[1]));
          assert.ok(Math.max(...waits) <= 30, `backoff capped at 30 s: ${waits.join(", ")}`);
        },
      );

      await t.step("the first command after the outage is answered", async () => {
        const id = await w.operator.send(room, "$ echo booted");
        // Generous: the operator's own client also backs off while Synapse was down.
        const final = await w.operator.waitForFinal(room, id, 180_000).catch((e) => {
          // What the agent saw after the outage: the one clue when no answer comes.
          console.error(`agent log:\n${w.agent.lines.join("\n")}`);
          throw e;
        });
        assert.match(final, /booted/);
      });

      await t.step(
        "a rejected token is a configuration error: exit 78 at once, no retry",
        async () => {
          const stateDir = await Deno.makeTempDir({ prefix: "tibet-nc-state-" });
          try {
            const agent = await startAgentProcess({
              ...w.env,
              TIBET_NC_STATE_DIR: stateDir,
              TIBET_NC_ACCESS_TOKEN: "syt_not_a_token",
            });
            const { code } = await agent.status;
            assert.equal(code, 78, agent.lines.join("\n"));
            assert.ok(
              agent.lines.some((l) => /TIBET_NC_ACCESS_TOKEN: the homeserver rejected it/.test(l)),
            );
            assert.ok(!agent.lines.some((l) => /retrying in/.test(l)), agent.lines.join("\n"));
          } finally {
            await Deno.remove(stateDir, { recursive: true });
          }
        },
      );
    } finally {
      await w.close();
    }
  },
);
