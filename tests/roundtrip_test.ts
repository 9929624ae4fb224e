import assert from "node:assert/strict";
import { startWorld } from "./support/fixture.ts";
import { oneTimeKeyCount } from "./support/synapse.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function deviceCount(homeserver: string, token: string): Promise<number> {
  const r = await fetch(`${homeserver}/_matrix/client/v3/devices`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const body = await r.json();
  return body.devices.length;
}

Deno.test(
  "an operator's encrypted command is decrypted, run and answered encrypted, also after SIGKILL",
  opts,
  async (t) => {
    const w = await startWorld();
    try {
      const { operator } = w;
      const agentId = w.agentUser.userId;
      const room = await operator.createRoom([agentId]);
      await operator.waitForJoin(room, agentId);

      await t.step("`$ echo <random>` is answered with the random text, encrypted", async () => {
        const token = crypto.randomUUID();
        const id = await operator.send(room, `$ echo ${token}`);
        const reply = await operator.waitForReply(room, id);
        assert.equal(reply.getWireType(), "m.room.encrypted");
        assert.equal(reply.getContent().msgtype, "m.notice");
        assert.match(reply.getContent().body, new RegExp(token));
      });

      await t.step("after SIGKILL and restart the same device answers a new command", async () => {
        const before = await deviceCount(w.synapse.url, w.agentUser.accessToken);
        await w.restartAgent("SIGKILL");
        const token = crypto.randomUUID();
        const id = await operator.send(room, `$ echo ${token}`);
        const reply = await operator.waitForReply(room, id);
        assert.equal(reply.getWireType(), "m.room.encrypted");
        assert.match(reply.getContent().body, new RegExp(token));
        assert.equal(before, 1);
        assert.equal(await deviceCount(w.synapse.url, w.agentUser.accessToken), 1);
        assert.equal(reply.getSender(), agentId);
        const info = await operator.client.getCrypto()!.getEncryptionInfoForEvent(reply);
        assert.ok(info, "reply carries encryption info");
      });

      await t.step(
        "restarts neither upload more one-time keys nor join the room again",
        async () => {
          const keys = () => oneTimeKeyCount(w.synapse.url, w.agentUser.accessToken);
          const before = await keys();
          assert.ok(before > 0 && before <= 50, `${before} one-time keys after the first start`);
          for (const signal of ["SIGTERM", "SIGKILL"] as const) {
            await w.restartAgent(signal);
            const id = await operator.send(room, "$ echo again");
            await operator.waitForReply(room, id);
            assert.equal(await keys(), before, `one-time keys after a ${signal} restart`);
            assert.deepEqual(w.agent.lines.filter((l) => /^joining/.test(l)), []);
          }
        },
      );

      await t.step("a `$ echo` sent in an unencrypted room is not executed", async () => {
        const plain = await operator.createRoom([agentId], false);
        await operator.waitForJoin(plain, agentId);
        const canary = crypto.randomUUID();
        await operator.send(plain, `$ echo ${canary}`);
        // A command sent after it in the encrypted room is answered: the agent has
        // seen the plaintext one by then.
        const id = await operator.send(room, "$ echo after");
        await operator.waitForReply(room, id);
        await new Promise((r) => setTimeout(r, 1000));
        for (const r of [plain, room]) {
          for (const n of operator.notices(r)) {
            assert.doesNotMatch(n.getContent().body, new RegExp(canary));
          }
        }
        assert.ok(
          w.agent.lines.every((l) => !l.includes(canary)),
          "the agent never logged the canary as a command",
        );
      });

      await t.step("SIGINT and SIGTERM stop the agent cleanly (exit 0)", async () => {
        assert.equal(await w.agent.kill("SIGINT"), 0);
        assert.ok(w.agent.lines.includes("SIGINT: stopping"), w.agent.lines.join("\n"));
        await w.restartAgent("SIGTERM");
        assert.equal(await w.agent.kill("SIGTERM"), 0);
        assert.ok(w.agent.lines.includes("stopped"));
      });
    } finally {
      await w.close();
    }
  },
);
