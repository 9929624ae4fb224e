import assert from "node:assert/strict";
import { startWorld, type World } from "./support/fixture.ts";
import { startOperator } from "./support/operator.ts";
import { runMain } from "./support/cli.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A bin-dir program that leaves a marker file when it runs (shell built-ins only). */
async function addCanary(w: World, name = "canary"): Promise<string> {
  const marker = `${await Deno.makeTempDir()}/ran`;
  await Deno.writeTextFile(`${w.binDir}/${name}`, `#!/bin/sh\n: > '${marker}'\necho canary ran\n`, {
    mode: 0o755,
  });
  return marker;
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

async function executeRecords(w: World, eventId: string): Promise<number> {
  const text = await Deno.readTextFile(`${w.stateDir}/audit.jsonl`);
  return text.split("\n").filter((l) => l.includes(`"nc.command.execute"`) && l.includes(eventId))
    .length;
}

Deno.test(
  "the L4 airlock refuses strangers, untrusted devices, old, replayed and edited commands",
  opts,
  async (t) => {
    const w = await startWorld({ TIBET_NC_TIMEBOX: "3" });
    try {
      const marker = await addCanary(w);
      const { operator } = w;
      const agentId = w.agentUser.userId;
      const room = await operator.createRoom([agentId]);
      await operator.waitForJoin(room, agentId);

      await t.step(
        "a stranger's invite is declined and a stranger's command never runs",
        async () => {
          const strangerUser = await w.synapse.register("stranger", crypto.randomUUID());
          const stranger = await startOperator(w.synapse.url, strangerUser);
          try {
            const own = await stranger.createRoom([agentId]);
            await w.agent.waitFor(/declining invite .* from @stranger/);
            assert.notEqual(stranger.client.getRoom(own)?.getMember(agentId)?.membership, "join");
            await operator.client.invite(room, strangerUser.userId);
            await stranger.client.joinRoom(room);
            await stranger.waitForRoom(room); // its crypto must know the room is encrypted
            await operator.waitForJoin(room, strangerUser.userId);
            const id = await stranger.send(room, "$ canary");
            await w.agent.waitFor(
              new RegExp(`refused ${id.replace(/[$]/g, "\\$")} from @stranger.*deny\\.sender`),
            );
            assert.equal(await exists(marker), false, "the stranger's command ran");
            assert.equal(
              operator.notices(room).some((n) =>
                n.getContent()["m.relates_to"]?.["m.in_reply_to"]?.event_id === id
              ),
              false,
              "strangers get no reply",
            );
            // A flood is recorded up to TIBET_NC_RATE_LIMIT (30) a minute, then once more.
            const flood = [];
            for (let i = 0; i < 35; i++) flood.push(await stranger.send(room, `$ canary ${i}`));
            await w.agent.waitFor(/deny\.sender\.flood/);
            await sleep(1500);
            const refusals = (await Deno.readTextFile(`${w.stateDir}/audit.jsonl`)).split("\n")
              .filter((l) => l.includes(`"actor":"${strangerUser.userId}"`));
            assert.equal(refusals.length, 31, "30 recorded refusals and one flood record");
            assert.equal(refusals.filter((l) => l.includes("deny.sender.flood")).length, 1);
            assert.equal(await exists(marker), false, "a flooding stranger's command ran");
          } finally {
            stranger.stop();
          }
        },
      );

      await t.step(
        "a device its owner did not cross-sign cannot send commands, reads why, and reads nothing else",
        async () => {
          const second = await w.synapse.login(w.operatorUser.userId, w.operatorUser.password);
          const unsigned = await startOperator(w.synapse.url, second, false);
          // What the unsigned device makes of an event: its text, or null if it cannot decrypt it.
          // The unsigned device's text of an event once it decrypts it, or null if it still
          // cannot after `ms` (keys may arrive late, so a failure counts only at the end).
          const readBy = async (eventId: string, ms: number): Promise<string | null> => {
            const deadline = Date.now() + ms;
            for (;;) {
              const seen = unsigned.client.getRoom(room)?.findEventById(eventId);
              if (seen && !seen.isBeingDecrypted() && !seen.isDecryptionFailure()) {
                return String(seen.getContent().body);
              }
              if (Date.now() > deadline) {
                assert.ok(seen, `the unsigned device never received ${eventId}`);
                return null;
              }
              await sleep(200);
            }
          };
          try {
            await sleep(1000); // let it see the room
            const id = await unsigned.send(room, "$ canary");
            const reply = await operator.waitForReply(room, id);
            assert.match(reply.getContent().body, /refused \(deny\.device\)/);
            assert.equal(await exists(marker), false, "the unsigned device's command ran");
            // The refused device reads the refusal and what to do, and no host detail.
            const text = await readBy(reply.getId()!, 20_000);
            assert.ok(text !== null, "the unsigned device cannot read its refusal");
            assert.match(text, /refused \(deny\.device\): your device is not cross-signed/);
            assert.match(text, /verify it from a session you already trust/);
            assert.doesNotMatch(text, /TIBET:|L4:/);
            // A verified operator's command right after: its output stays unreadable there.
            const secret = `secret-${crypto.randomUUID()}`;
            const next = await operator.send(room, `$ echo ${secret}`);
            assert.match(await operator.waitForFinal(room, next), new RegExp(secret));
            const answer = await operator.waitForReply(room, next);
            assert.equal(await readBy(answer.getId()!, 8000), null, "it read the output");
            // Nor any edit of it, nor anything else carrying the output.
            const everything = unsigned.notices(room).map((e) => JSON.stringify(e.getContent()));
            assert.ok(!everything.some((c) => c.includes(secret)), "the secret reached it");
          } finally {
            unsigned.stop();
          }
        },
      );

      await t.step(
        "a command older than TIBET_NC_TIMEBOX is answered expired and not run",
        async () => {
          Deno.kill(w.agent.pid, "SIGSTOP");
          let id: string;
          try {
            id = await operator.send(room, "$ canary");
            await sleep(4000);
          } finally {
            Deno.kill(w.agent.pid, "SIGCONT");
          }
          const reply = await operator.waitForReply(room, id);
          assert.match(reply.getContent().body, /refused \(deny\.expired\): expired/);
          assert.equal(await exists(marker), false, "the expired command ran");
        },
      );

      await t.step("an edit (m.replace) never runs", async () => {
        const id = await operator.send(room, "$ echo original");
        await operator.waitForFinal(room, id);
        const edit = await operator.edit(room, id, "$ canary");
        const after = await operator.send(room, "$ echo after-edit");
        await operator.waitForFinal(room, after);
        assert.equal(await exists(marker), false, "the edit ran");
        assert.equal(
          operator.notices(room).some((n) =>
            n.getContent()["m.relates_to"]?.["m.in_reply_to"]?.event_id === edit
          ),
          false,
        );
      });

      await t.step(
        "a message the agent's crypto cannot read is refused, recorded, and never runs",
        async () => {
          // A lone surrogate: the operator's crypto encrypts it, the agent's cannot
          // parse the decrypted JSON. Before, this was silence.
          const id = await operator.send(room, "$ canary \ud800");
          const reply = await operator.waitForReply(room, id);
          assert.match(reply.getContent().body, /^refused \(deny\.unreadable\): .*nothing was run/);
          assert.equal(await exists(marker), false, "an unreadable message ran");
          const records = (await Deno.readTextFile(`${w.stateDir}/audit.jsonl`)).split("\n")
            .filter((l) => l.includes(`"${id}"`));
          assert.equal(records.length, 1, "one audit record for the unreadable message");
          assert.match(records[0], /"token_type":"nc\.airlock\.deny"/);
          assert.match(records[0], /\\"rule\\":\\"deny\.unreadable\\"/);
        },
      );

      await t.step(
        "a command sent while the agent was down never runs: it is answered expired",
        async () => {
          // Its own canary: a later step widens the timebox, making this event fresh.
          const historyMarker = await addCanary(w, "history-canary");
          await w.agent.kill("SIGTERM");
          const id = await operator.send(room, "$ history-canary");
          await sleep(4000); // older than the timebox when the agent sees it
          await w.restartAgent("SIGTERM");
          const after = await operator.send(room, "$ echo after-restart");
          await operator.waitForFinal(room, after);
          assert.equal(await exists(historyMarker), false, "backlog ran after the restart");
          // Nothing in silence: it arrived after the previous run's last claim, so it is answered.
          assert.match(await operator.waitForFinal(room, id), /^refused \(deny\.expired\)/);
          assert.equal(await exists(historyMarker), false, "backlog ran after the restart");
        },
      );

      await t.step(
        "an event id runs at most once, also when redelivered after a restart",
        async () => {
          w.env.TIBET_NC_TIMEBOX = "600"; // so the redelivered event is fresh: only the replay store stops it
          await w.restartAgent("SIGTERM");
          const id = await operator.send(room, "$ echo once");
          await operator.waitForFinal(room, id);
          await w.restartAgent("SIGKILL");
          const after = await operator.send(room, "$ echo after-kill");
          await operator.waitForFinal(room, after);
          assert.equal(await executeRecords(w, id), 1);
        },
      );

      await t.step("rate and concurrency limits answer clearly and run nothing", async () => {
        w.env.TIBET_NC_RATE_LIMIT = "2";
        w.env.TIBET_NC_MAX_CONCURRENT = "1";
        await w.restartAgent("SIGTERM");
        const slow = await operator.send(room, "$ sleep 3");
        await operator.waitForReply(room, slow, 10_000);
        const busy = await operator.send(room, "$ canary");
        assert.match(
          (await operator.waitForReply(room, busy)).getContent().body,
          /refused \(deny\.busy\)/,
        );
        await operator.waitForFinal(room, slow);
        const third = await operator.send(room, "$ canary");
        assert.match(
          (await operator.waitForReply(room, third)).getContent().body,
          /refused \(deny\.rate\): .*dropped, unanswered and unrecorded/,
        );
        // Past the rate: nothing more is recorded or answered, built-ins included.
        const audit = () => Deno.readTextFileSync(`${w.stateDir}/audit.jsonl`);
        const before = audit().split("\n").length;
        const flood: string[] = [];
        for (const text of ["$ canary", "$ exit", "$ help", "$ canary", "$ cancel", "$ canary"]) {
          flood.push(await operator.send(room, text));
        }
        await sleep(3000);
        assert.equal(audit().split("\n").length, before, "a flood message was recorded");
        for (const id of flood) {
          await assert.rejects(operator.waitForReply(room, id, 500), `${id} was answered`);
        }
        await w.agent.waitFor(/dropping messages of @operator:localhost past TIBET_NC_RATE_LIMIT/);
        assert.equal(await exists(marker), false, "a limited command ran");
        delete w.env.TIBET_NC_RATE_LIMIT;
        delete w.env.TIBET_NC_MAX_CONCURRENT;
      });

      await t.step(
        "an operator whose identity changed is refused until `trust` approves it",
        async () => {
          await w.restartAgent("SIGTERM"); // fresh rate limits after the previous step
          await operator.resetIdentity();
          await sleep(2000); // the agent learns of the new identity through its sync
          const id = await operator.send(room, "$ canary");
          const reply = await operator.waitForReply(room, id);
          assert.match(reply.getContent().body, /refused \(deny\.identity\)/);
          assert.equal(await exists(marker), false, "ran after an identity change");
          const trust = await runMain(["trust", w.operatorUser.userId], { env: w.env });
          assert.equal(trust.code, 0, trust.stderr);
          assert.match(
            trust.stdout,
            /approved @operator:localhost, master key/,
          );
          const after = await operator.send(room, "$ echo trusted-again");
          assert.match(await operator.waitForFinal(room, after), /trusted-again/);
        },
      );

      await t.step(
        "an identity changed while the agent was down is refused after its restart",
        async () => {
          // No sync token survives a restart, so only a fresh key query can tell.
          await w.restartAgent("SIGTERM", () => operator.resetIdentity());
          const id = await operator.send(room, "$ canary");
          const reply = await operator.waitForReply(room, id);
          assert.match(reply.getContent().body, /refused \(deny\.identity\)/);
          assert.equal(await exists(marker), false, "ran after an identity change while down");
          const trust = await runMain(["trust", w.operatorUser.userId], { env: w.env });
          assert.equal(trust.code, 0, trust.stderr);
          const after = await operator.send(room, "$ echo trusted-after-restart");
          assert.match(await operator.waitForFinal(room, after), /trusted-after-restart/);
        },
      );

      await t.step(
        "TIBET_NC_ALLOW_UNSIGNED_DEVICES=yes lets an unsigned device through (weaker)",
        async () => {
          w.env.TIBET_NC_ALLOW_UNSIGNED_DEVICES = "yes";
          await w.restartAgent("SIGTERM");
          const second = await w.synapse.login(w.operatorUser.userId, w.operatorUser.password);
          const unsigned = await startOperator(w.synapse.url, second, false);
          try {
            await sleep(1000);
            const id = await unsigned.send(room, "$ echo from-unsigned");
            assert.match(await operator.waitForFinal(room, id), /from-unsigned/);
          } finally {
            unsigned.stop();
            delete w.env.TIBET_NC_ALLOW_UNSIGNED_DEVICES;
          }
        },
      );

      await t.step("positive control: the canary does run when everything allows it", async () => {
        const id = await operator.send(room, "$ canary");
        assert.match(await operator.waitForFinal(room, id), /canary ran/);
        assert.equal(await exists(marker), true);
      });
    } finally {
      await w.close();
    }
  },
);
