/**
 * Three agents and one operator in one encrypted room on a real Synapse: a
 * command runs exactly where it is targeted (by name, tag or `@all`), an
 * untargeted one nowhere with exactly one hint, a stranger's nowhere; answers
 * are threads on the command naming their host, and their edits still apply.
 * @module
 */

import assert from "node:assert/strict";
import type { MatrixEvent } from "matrix-js-sdk";
import { type Fleet, startFleet } from "./support/fleet.ts";
import { startOperator } from "./support/operator.ts";
import { FLEET_HINT } from "../lib/matrix/target.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const escape = (s: string) => s.replace(/[$.*+?()[\]{}|\\^]/g, "\\$&");
const HOSTS = ["web-1", "web-2", "db-1"];

/** Which hosts' canaries ran with argument `tag`. */
async function ranOn(f: Fleet, tag: string): Promise<string[]> {
  const out: string[] = [];
  for (const h of HOSTS) {
    const text = await Deno.readTextFile(`${f.markerDir}/${h}`).catch(() => "");
    if (text.split("\n").includes(tag)) out.push(h);
  }
  return out.sort();
}

/**
 * The replies to `eventId` (not edits), each with the body it now shows. Their
 * relation is read from the original content: the SDK's `getContent()` of an
 * edited event is the edit's new content, which carries none.
 */
function answers(f: Fleet, eventId: string): { reply: MatrixEvent; body: string }[] {
  return f.operator.notices(f.room)
    .filter((ev) => {
      const rel = ev.getOriginalContent()["m.relates_to"];
      return rel?.rel_type !== "m.replace" && rel?.["m.in_reply_to"]?.event_id === eventId;
    })
    .map((reply) => ({
      reply,
      body: f.operator.edits(f.room, reply.getId()!).at(-1) ?? reply.getOriginalContent().body,
    }));
}

/** Waits until `hosts` each gave a final answer (`done` says when a body is final). */
async function waitForHosts(
  f: Fleet,
  eventId: string,
  hosts: string[],
  done = (body: string) => /^TIBET: /m.test(body),
  timeoutMs = 120_000,
): Promise<Map<string, string>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const by = new Map(
      answers(f, eventId).filter((a) => done(a.body)).map((
        a,
      ) => [a.body.split(/[:\n]/)[0], a.body]),
    );
    if (hosts.every((h) => by.has(h))) return by;
    if (Date.now() > deadline) {
      throw new Error(`answers to ${eventId} from ${hosts}: got ${[...by.keys()]}`);
    }
    await sleep(200);
  }
}

Deno.test("a fleet room: three agents, targeted by name, tag and @all", opts, async (t) => {
  const f = await startFleet([
    { hostname: "web-1", tags: "role=web,dc=ams" },
    { hostname: "web-2", tags: "role=web" },
    { hostname: "db-1", tags: "role=db", hint: true },
  ]);
  try {
    const { operator, room } = f;
    // Lets stray answers (a wrong agent's) arrive before the counts are checked.
    const settle = () => sleep(4000);

    await t.step("a host by name: only there, answered in a thread naming it", async () => {
      const id = await operator.send(room, "@web-2 $ canary name");
      const by = await waitForHosts(f, id, ["web-2"]);
      assert.match(by.get("web-2")!, /^web-2: [\s\S]*canary ran on web-2/);
      await settle();
      assert.deepEqual(await ranOn(f, "name"), ["web-2"]);
      // The others never claimed, recorded or answered it.
      for (const a of f.agents.filter((a) => a.spec.hostname !== "web-2")) {
        for (const file of ["seen-events", "audit.jsonl"]) {
          const text = await Deno.readTextFile(`${a.stateDir}/${file}`).catch(() => "");
          assert.ok(!text.includes(id), `${a.spec.hostname}'s ${file} has ${id}`);
        }
      }
      const all = answers(f, id);
      assert.equal(all.length, 1, "one answer");
      assert.deepEqual(all[0].reply.getOriginalContent()["m.relates_to"], {
        rel_type: "m.thread",
        event_id: id,
        is_falling_back: true,
        "m.in_reply_to": { event_id: id },
      });
    });

    await t.step("a tag: exactly the two web hosts", async () => {
      const id = await operator.send(room, "@role=web $ canary tag");
      await waitForHosts(f, id, ["web-1", "web-2"]);
      await settle();
      assert.deepEqual(await ranOn(f, "tag"), ["web-1", "web-2"]);
      assert.equal(answers(f, id).length, 2);
    });

    await t.step("a glob and @all", async () => {
      const glob = await operator.send(room, "@web-* $ canary glob");
      const all = await operator.send(room, "@all $ canary all");
      await waitForHosts(f, glob, ["web-1", "web-2"]);
      await waitForHosts(f, all, HOSTS);
      await settle();
      assert.deepEqual(await ranOn(f, "glob"), ["web-1", "web-2"]);
      assert.deepEqual(await ranOn(f, "all"), [...HOSTS].sort());
      assert.equal(answers(f, all).length, 3);
    });

    await t.step("untargeted: runs nowhere, and exactly one agent hints", async () => {
      const id = await operator.send(room, "$ canary none");
      const by = await waitForHosts(f, id, ["db-1"], (b) => b.includes(FLEET_HINT));
      assert.equal(by.get("db-1"), `db-1: ${FLEET_HINT}`);
      await settle();
      assert.deepEqual(await ranOn(f, "none"), []);
      assert.equal(answers(f, id).length, 1, "one hint");
    });

    await t.step("@all hosts: each agent's name, tags, version, uptime, chain head", async () => {
      const id = await operator.send(room, "@all hosts");
      const by = await waitForHosts(f, id, HOSTS, (b) => /chain #\d+/.test(b));
      assert.match(
        by.get("web-1")!,
        /^web-1\nweb-1 {2}tags role=web,dc=ams {2}tibet-nc \S+ {2}up /,
      );
      assert.match(by.get("db-1")!, /tags role=db .*chain #\d+ L4 [0-9a-f]{16}$/);
    });

    await t.step(
      "a threaded answer's edits still apply (a running reply, then its final)",
      async () => {
        const id = await operator.send(room, "@web-1 $ sleep 4");
        const by = await waitForHosts(f, id, ["web-1"]);
        assert.match(by.get("web-1")!, /^web-1: /);
        const [a] = answers(f, id);
        assert.match(a.reply.getOriginalContent().body, /^web-1: running #\d+/);
        assert.ok(operator.edits(room, a.reply.getId()!).length >= 1, "the final came as an edit");
      },
    );

    await t.step("a stranger's @all runs nowhere and gets no answer", async () => {
      const strangerUser = await f.synapse.register("stranger", crypto.randomUUID());
      const stranger = await startOperator(f.synapse.url, strangerUser);
      try {
        await operator.client.invite(room, strangerUser.userId);
        await stranger.client.joinRoom(room);
        await stranger.waitForRoom(room);
        await operator.waitForJoin(room, strangerUser.userId);
        const id = await stranger.send(room, "@all $ canary stranger");
        const refused = new RegExp(`refused ${escape(id)} from @stranger.*deny\\.sender`);
        await Promise.all(f.agents.map((a) => a.agent.waitFor(refused, 120_000)));
        await settle();
        assert.deepEqual(await ranOn(f, "stranger"), []);
        assert.equal(answers(f, id).length, 0, "strangers get no answer");
      } finally {
        stranger.stop();
      }
    });

    await t.step("agents never take each other's answers as commands", async () => {
      // Every message an agent takes as a command is claimed with its sender first.
      for (const a of f.agents) {
        const seen = await Deno.readTextFile(`${a.stateDir}/seen-events`);
        assert.ok(seen.includes(f.operatorUser.userId), "claims name their sender");
        for (const o of f.agents.filter((o) => o !== a)) {
          assert.ok(!seen.includes(o.user.userId), `${a.spec.hostname} took ${o.spec.hostname}'s`);
          assert.ok(!a.agent.lines.some((l) => l.includes(`from ${o.user.userId}`)));
        }
      }
    });
  } finally {
    await f.close();
  }
});
