/**
 * The privileged lane through the real agent and Synapse, with two allowed
 * operators and a stranger: a command the policy holds runs once, after another
 * operator approves it, as TIBET_NC_APPROVED_EXEC_USER; a canary proves that no
 * self-approval, stranger, unsigned device, edit, duplicate, late approval,
 * approval after a rejection or after a SIGKILL and restart ever runs it.
 */
import assert from "node:assert/strict";
import { startWorld, TEST_PROGRAMS } from "./support/fixture.ts";
import { startOperator } from "./support/operator.ts";
import { runMain } from "./support/cli.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const isRoot = Deno.uid() === 0;
const TIMEOUT_S = 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test(
  "privileged lane: held commands run once, after another operator's approval",
  opts,
  async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "tibet-nc-approval-" });
    await Deno.chmod(dir, 0o777); // the approved exec user writes the canary here
    const marker = `${dir}/ran`;
    const policy = `${dir}/policy.json`;
    await Deno.writeTextFile(
      policy,
      JSON.stringify({ mode: "denylist", approve: ["canary **"] }),
    );
    const w = await startWorld(
      {
        TIBET_NC_POLICY_FILE: policy,
        TIBET_NC_APPROVAL_TIMEOUT: String(TIMEOUT_S),
        ...(isRoot
          ? {
            TIBET_NC_EXEC_AS_SELF: "no",
            TIBET_NC_EXEC_USER: "nobody",
            TIBET_NC_APPROVED_EXEC_USER: "daemon",
          }
          : {}),
      },
      TEST_PROGRAMS,
      async (binDir) => {
        await Deno.chmod(binDir, 0o755);
        // Appends its argument to the marker: every line is one run. Prints who it ran as.
        await Deno.writeTextFile(
          `${binDir}/canary`,
          `#!/bin/sh\necho "$1" >> '${marker}'\nid -un\n`,
          { mode: 0o755 },
        );
      },
    );
    const second = await w.synapse.register("second", crypto.randomUUID());
    const stranger = await w.synapse.register("stranger", crypto.randomUUID());
    // The second operator is allowed too: restart the agent with both.
    w.env.TIBET_NC_ALLOWED_USERS = `${w.operatorUser.userId},${second.userId}`;
    await w.restartAgent("SIGTERM");
    const a = w.operator;
    const b = await startOperator(w.synapse.url, second);
    const c = await startOperator(w.synapse.url, stranger);
    const others = [b, c];
    try {
      const agentId = w.agentUser.userId;
      const room = await a.createRoom([agentId, b.userId, c.userId]);
      for (const o of others) {
        await o.client.joinRoom(room);
        await o.waitForRoom(room);
      }
      await a.waitForJoin(room, agentId);
      for (const o of others) await a.waitForJoin(room, o.userId);

      const runs = async () =>
        (await Deno.readTextFile(marker).catch(() => "")).split("\n").filter(Boolean);
      /** Sends a held command; returns its event id and the id to approve it by. */
      const hold = async (arg: string) => {
        const id = await a.send(room, `$ canary ${arg}`);
        const body = await a.waitForAnswer(room, id, 60_000);
        const m = body.match(/^held for approval #([0-9a-f]{6})/);
        assert.ok(m, body);
        return { id, hold: m[1] };
      };
      const say = async (who: typeof a, text: string) =>
        await who.waitForFinal(room, await who.send(room, text), 60_000);

      // Held first and left alone: it expires while the other steps run.
      const late = await hold("late");
      let first: { id: string; hold: string };
      await t.step("a held command waits, and says how and by whom it is approved", async () => {
        first = await hold("one");
        const body = await a.waitForAnswer(room, first.id);
        assert.match(body, new RegExp(`approve ${first.hold}.*reject ${first.hold}`));
        assert.ok(body.includes(b.userId), "names who may approve");
        assert.deepEqual(await runs(), []);
      });

      await t.step("the requester cannot approve their own command", async () => {
        assert.match(await say(a, `$ approve ${first.hold}`), /deny\.approval\.self/);
        assert.deepEqual(await runs(), []);
      });

      await t.step("a stranger's approval gets no answer and runs nothing", async () => {
        await c.send(room, `$ approve ${first.hold}`);
        await sleep(3000);
        assert.deepEqual(await runs(), []);
      });

      await t.step("an unsigned device of the other operator cannot approve", async () => {
        const login = await w.synapse.login(second.userId, second.password);
        const unsigned = await startOperator(w.synapse.url, login, false);
        try {
          await unsigned.waitForRoom(room);
          await unsigned.send(room, `$ approve ${first.hold}`);
          await sleep(4000);
          assert.deepEqual(await runs(), []);
        } finally {
          unsigned.stop();
        }
      });

      await t.step(
        "an edit that turns a message into an approval does nothing but a record",
        async () => {
          const msg = await b.send(room, "hello");
          const edit = await b.edit(room, msg, `$ approve ${first.hold}`);
          await sleep(3000);
          assert.deepEqual(await runs(), []);
          const log = await Deno.readTextFile(`${w.stateDir}/audit.jsonl`);
          const refusal = log.trim().split("\n").map((l) => JSON.parse(l).token)
            .find((t) => t.eraan.includes(edit));
          assert.ok(refusal, "the edit is recorded");
          assert.equal(JSON.parse(refusal.eromheen).rule, "deny.approval.edit");
        },
      );

      await t.step(
        "the other operator's approval runs it once, as the approved exec user",
        async () => {
          assert.match(
            await say(b, `$ approve ${first.hold}`),
            /^approved #[0-9a-f]{6} of @operator/,
          );
          const final = await a.waitForFinal(room, first.id, 60_000);
          assert.match(
            final,
            new RegExp(`^approved by ${b.userId.replace(/[.]/g, "\\.")} · exit 0`),
          );
          if (isRoot) assert.match(final, /^daemon$/m, "runs as TIBET_NC_APPROVED_EXEC_USER");
          assert.deepEqual(await runs(), ["one"]);
          assert.match(await say(b, `$ approve ${first.hold}`), /deny\.approval\.unknown/);
          assert.deepEqual(await runs(), ["one"], "a second approval runs nothing");
        },
      );

      await t.step("after a rejection, an approval does nothing", async () => {
        const held = await hold("two");
        assert.match(await say(b, `$ reject ${held.hold}`), /^rejected #/);
        assert.match(await a.waitForFinal(room, held.id), /^rejected by @second/);
        assert.match(await say(b, `$ approve ${held.hold}`), /deny\.approval\.unknown/);
        assert.deepEqual(await runs(), ["one"]);
      });

      await t.step("after the timeout, an approval does nothing", async () => {
        assert.match(await a.waitForFinal(room, late.id, 60_000), /^expired: no approval within/);
        assert.match(await say(b, `$ approve ${late.hold}`), /deny\.approval\.unknown/);
        assert.deepEqual(await runs(), ["one"]);
      });

      await t.step("the requester withdraws with cancel; the other operator cannot", async () => {
        const held = await hold("four");
        const notYours = await b.waitForAnswer(room, await b.send(room, "$ cancel"));
        assert.match(notYours, /only @operator:localhost, who asked, can withdraw it/);
        await a.waitForAnswer(room, await a.send(room, "$ cancel"));
        assert.match(await a.waitForFinal(room, held.id), /^withdrawn \(withdrawn by @operator/);
        assert.deepEqual(await runs(), ["one"]);
      });

      await t.step(
        "after a SIGKILL and restart, the held command expires and never runs",
        async () => {
          const held = await hold("five");
          await w.restartAgent("SIGKILL");
          // The next start answers it in a reply of its own (held commands do not survive).
          const answered = () =>
            a.notices(room).some((ev) =>
              ev.getOriginalContent()["m.relates_to"]?.["m.in_reply_to"]?.event_id === held.id &&
              /^expired: the agent restarted while this command waited for approval/.test(
                String(ev.getContent().body),
              )
            );
          const deadline = Date.now() + 60_000;
          while (!answered()) {
            assert.ok(Date.now() < deadline, "the restart did not answer the held command");
            await sleep(200);
          }
          assert.match(await say(b, `$ approve ${held.hold}`), /deny\.approval\.unknown/);
          await sleep(1000);
          assert.deepEqual(await runs(), ["one"]);
        },
      );

      await t.step("the log verifies and links request, approval and run", async () => {
        const log = `${w.stateDir}/audit.jsonl`;
        const records = (await Deno.readTextFile(log)).trim().split("\n").map((l) => JSON.parse(l));
        const bySeq = new Map(records.map((r) => [r.seq, r]));
        const grant = records.find((r) => r.token.token_type === "nc.approval.grant");
        assert.equal(grant.token.actor, b.userId);
        const request = bySeq.get(grant.parent_seq);
        assert.equal(request.token.token_type, "nc.approval.request");
        assert.equal(request.token.actor, a.userId);
        const execute = records.find((r) =>
          r.token.token_type === "nc.command.execute" && r.parent_seq === grant.seq
        );
        assert.ok(execute, "the run's execute record follows from the approval");
        assert.equal(JSON.parse(execute.token.eromheen).approved_by, b.userId);
        const verify = await runMain(["audit", "verify", "--log", log]);
        assert.equal(verify.code, 0, verify.stdout + verify.stderr);
        const show = await runMain(["audit", "show", "-n", "200", "--log", log]);
        assert.match(
          show.stdout,
          /nc\.approval\.grant \(of #\d+\)\s+@second:localhost\s+approves #/,
        );
      });
    } finally {
      for (const o of others) o.stop();
      await w.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
