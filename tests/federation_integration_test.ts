/**
 * A fleet across homeservers: two federated Synapses on 127.0.0.1, each with
 * its own server name (`127.0.0.1:<port>`) and a self-signed certificate on its
 * TLS federation listener (certificate checks relaxed in this test config
 * only). The operator and web-1 are on A, db-1 on B; the operator's encrypted
 * room on A holds both. A targeted command reaches the agent on the other
 * homeserver over real E2EE, runs only there, and its encrypted answer comes
 * back to the operator; the agent on B trusts the operator's cross-signed
 * device, learnt over federation.
 * @module
 */

import assert from "node:assert/strict";
import type { MatrixEvent } from "matrix-js-sdk";
import { startSynapse, type Synapse } from "./support/synapse.ts";
import { type FleetAgent, startFleetAgent } from "./support/fleet.ts";
import { type Operator, startOperator } from "./support/operator.ts";
import { cleanupStack } from "./support/cleanup.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const HOSTS = ["web-1", "db-1"];

interface Setting {
  a: Synapse;
  b: Synapse;
  operator: Operator;
  agents: FleetAgent[];
  room: string;
  markerDir: string;
}

/** Which hosts' canaries ran with argument `tag`. */
async function ranOn(s: Setting, tag: string): Promise<string[]> {
  const out: string[] = [];
  for (const h of HOSTS) {
    const text = await Deno.readTextFile(`${s.markerDir}/${h}`).catch(() => "");
    if (text.split("\n").includes(tag)) out.push(h);
  }
  return out.sort();
}

/** The replies to `eventId` (not edits), each with the body it now shows. */
function answers(s: Setting, eventId: string): { reply: MatrixEvent; body: string }[] {
  return s.operator.notices(s.room)
    .filter((ev) => {
      const rel = ev.getOriginalContent()["m.relates_to"];
      return rel?.rel_type !== "m.replace" && rel?.["m.in_reply_to"]?.event_id === eventId;
    })
    .map((reply) => ({
      reply,
      body: s.operator.edits(s.room, reply.getId()!).at(-1) ?? reply.getOriginalContent().body,
    }));
}

/** Waits until `hosts` each gave a final answer to `eventId`; returns them by host. */
async function waitForHosts(
  s: Setting,
  eventId: string,
  hosts: string[],
  timeoutMs = 180_000,
): Promise<Map<string, { reply: MatrixEvent; body: string }>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const by = new Map(
      answers(s, eventId).filter((a) => /^TIBET: /m.test(a.body)).map((a) => [
        a.body.split(/[:\n]/)[0],
        a,
      ]),
    );
    if (hosts.every((h) => by.has(h))) return by;
    if (Date.now() > deadline) {
      throw new Error(`answers to ${eventId} from ${hosts}: got ${[...by.keys()]}`);
    }
    await sleep(200);
  }
}

Deno.test("a fleet across two federated homeservers, over E2EE", opts, async (t) => {
  // A signal while starting or running stops all of it too (cleanup.ts).
  const { cleanups, close } = cleanupStack();
  try {
    const [a, b] = await Promise.all([
      startSynapse({ federation: true }),
      startSynapse({ federation: true }),
    ]);
    cleanups.push(() => a.stop(), () => b.stop());
    assert.notEqual(a.serverName, b.serverName);
    const operatorUser = await a.register("operator", crypto.randomUUID());
    const markerDir = await Deno.makeTempDir({ prefix: "tibet-nc-federation-markers-" });
    cleanups.push(() => Deno.remove(markerDir, { recursive: true }));
    const agents = await Promise.all([
      startFleetAgent(a, { hostname: "web-1" }, operatorUser.userId, markerDir, cleanups),
      startFleetAgent(b, { hostname: "db-1" }, operatorUser.userId, markerDir, cleanups),
    ]);
    const [web1, db1] = agents;
    assert.ok(web1.user.userId.endsWith(`:${a.serverName}`));
    assert.ok(db1.user.userId.endsWith(`:${b.serverName}`));
    const operator = await startOperator(a.url, operatorUser);
    cleanups.push(() => Promise.resolve(operator.stop()));
    const room = await operator.createRoom(agents.map((x) => x.user.userId));
    // db-1's invite and join go over federation.
    for (const x of agents) {
      try {
        await operator.waitForJoin(room, x.user.userId, 180_000);
      } catch (e) {
        // What each agent saw of the invite: the one clue when this fails.
        for (const y of agents) {
          console.error(`log of ${y.spec.hostname}:\n${y.agent.lines.join("\n")}`);
        }
        throw e;
      }
    }
    const s: Setting = { a, b, operator, agents, room, markerDir };
    const settle = () => sleep(4000);

    await t.step("@db-1: runs on the other homeserver only, answered over E2EE", async () => {
      const id = await operator.send(room, "@db-1 $ canary remote");
      const by = await waitForHosts(s, id, ["db-1"]);
      const { reply, body } = by.get("db-1")!;
      assert.match(body, /^db-1: [\s\S]*canary ran on db-1/);
      assert.equal(reply.getSender(), db1.user.userId);
      assert.ok(reply.isEncrypted(), "the answer from B came encrypted");
      assert.ok(!reply.isDecryptionFailure());
      await settle();
      assert.deepEqual(await ranOn(s, "remote"), ["db-1"]);
      assert.equal(answers(s, id).length, 1, "one answer");
      // web-1 never claimed or recorded it.
      for (const file of ["seen-events", "audit.jsonl"]) {
        const text = await Deno.readTextFile(`${web1.stateDir}/${file}`).catch(() => "");
        assert.ok(!text.includes(id), `web-1's ${file} has ${id}`);
      }
      // db-1 took it from the operator on A.
      const seen = await Deno.readTextFile(`${db1.stateDir}/seen-events`);
      assert.ok(seen.includes(id) && seen.includes(operatorUser.userId));
    });

    await t.step("@web-1: runs on the operator's own homeserver only", async () => {
      const id = await operator.send(room, "@web-1 $ canary local");
      const by = await waitForHosts(s, id, ["web-1"]);
      assert.match(by.get("web-1")!.body, /^web-1: [\s\S]*canary ran on web-1/);
      assert.ok(by.get("web-1")!.reply.isEncrypted());
      await settle();
      assert.deepEqual(await ranOn(s, "local"), ["web-1"]);
      assert.equal(answers(s, id).length, 1);
    });

    await t.step("@all: both homeservers, one answer each", async () => {
      const id = await operator.send(room, "@all $ canary all");
      await waitForHosts(s, id, HOSTS);
      await settle();
      assert.deepEqual(await ranOn(s, "all"), [...HOSTS].sort());
      assert.equal(answers(s, id).length, 2);
    });
  } finally {
    await close();
  }
});
