import assert from "node:assert/strict";
import { startWorld, TEST_PROGRAMS } from "./support/fixture.ts";
import { processesWith, vm } from "./support/processes.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "top is answered with its rendered screen and edited as it changes; watch=2 edits one reply until cancel",
  opts,
  async (t) => {
    const w = await startWorld({}, [...TEST_PROGRAMS, "top", "date"]);
    try {
      const { operator } = w;
      const agentId = w.agentUser.userId;
      const room = await operator.createRoom([agentId]);
      await operator.waitForJoin(room, agentId);
      const run = async (text: string, timeoutMs = 60_000) => {
        const id = await operator.send(room, `$ ${text}`);
        return await operator.waitForFinal(room, id, timeoutMs);
      };

      {
        await t.step(
          "duration=6 top: screen edits with a readable header, stopped cleanly",
          async () => {
            // A delay no other top on the machine uses, to find this one's processes.
            const marker = `1.${1000 + Math.floor(Math.random() * 8999)}`;
            const id = await operator.send(room, `$ duration=6 top -d ${marker}`);
            const reply = await operator.waitForReply(room, id, 10_000);
            const final = await operator.waitForFinal(room, id, 30_000);
            assert.match(final, /stopped after the 6 s duration, as asked/, final);
            assert.match(final, /^top - \d\d:\d\d:\d\d /m, final);
            assert.match(final, /^Tasks: +\d+ total/m);
            assert.doesNotMatch(final, /\[\d+;\d+H|\(B\[m/, "no escape-sequence soup");
            const progress = operator.edits(room, reply.getId()!).filter((b) =>
              /^running #/.test(b)
            );
            const screens = [reply.getContent().body, ...progress].filter((b) =>
              /^top - \d/m.test(b)
            );
            assert.ok(screens.length >= 2, `expected >= 2 screens, got ${JSON.stringify(screens)}`);
            assert.deepEqual(await processesWith(marker), [], "top left a process");
          },
        );
      }

      await t.step("a screen program that exits at once answers with its last screen", async () => {
        const body = await run("screen=yes printf 'one\\033[2;5Htwo'");
        assert.match(body, /^exit 0/m);
        assert.match(body, /^one\n {4}two$/m, body);
      });

      await t.step(
        "a screen flooded for 5 s keeps the agent bounded and stops cleanly",
        async () => {
          const before = vm(w.agent.pid, "VmHWM");
          const body = await run("duration=5 screen=yes yes flood", 60_000);
          const growth = vm(w.agent.pid, "VmHWM") - before;
          assert.match(body, /stopped after the 5 s duration/, body);
          assert.match(body, /^flood$/m);
          console.log(`agent peak RSS +${(growth / 1048576).toFixed(1)} MiB over a 5 s flood`);
          assert.ok(growth < 64 * 1048576, `agent grew ${growth} bytes`);
          assert.deepEqual(await processesWith("flood"), []);
        },
      );

      await t.step("top -b -n 1 stays a plain command", async () => {
        const body = await run("top -b -n 1");
        assert.match(body, /^exit 0/m);
        assert.match(body, /top - \d/);
      });

      await t.step(
        "duration=0, duration=99999, watch=0 and watch=1 are refused clearly",
        async () => {
          assert.match(
            await run("duration=0 top"),
            /^refused \(deny\.duration\): duration=0 is outside 1\.\.60 s/,
          );
          assert.match(await run("duration=99999 top"), /^refused \(deny\.duration\)/);
          assert.match(
            await run("watch=0 date"),
            /^refused \(deny\.watch\): watch=0 is outside 2\.\./,
          );
          assert.match(await run("watch=1 date"), /^refused \(deny\.watch\)/);
        },
      );

      await t.step(
        "watch=2 date edits one reply with new times, is a job, and cancel ends it",
        async () => {
          const marker = `m${Math.floor(Math.random() * 1e9)}`;
          const id = await operator.send(room, `$ watch=2 date +%H:%M:%S-${marker}`);
          const reply = await operator.waitForReply(room, id, 10_000);
          const stamps = new Set<string>();
          const deadline = Date.now() + 30_000;
          while (stamps.size < 3 && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 500));
            for (const b of [reply.getContent().body, ...operator.edits(room, reply.getId()!)]) {
              for (const m of b.matchAll(new RegExp(`(\\d\\d:\\d\\d:\\d\\d)-${marker}`, "g"))) {
                stamps.add(m[1]);
              }
            }
          }
          assert.ok(stamps.size >= 3, `expected >= 3 times, got ${[...stamps]}`);
          const jobs = await operator.waitForReply(room, await operator.send(room, "$ jobs"));
          assert.match(jobs.getContent().body, /watch=2 date/);
          await operator.waitForReply(room, await operator.send(room, "$ cancel"));
          // waitForFinal looks the reply up again, and an applied edit hides its reply relation.
          let final = "";
          const until = Date.now() + 20_000;
          while (!/^TIBET: /m.test(final) && Date.now() < until) {
            await new Promise((r) => setTimeout(r, 300));
            final = operator.edits(room, reply.getId()!).at(-1) ?? "";
          }
          assert.match(
            final,
            /^watch ended after \d+ runs every 2 s: cancelled by @operator/m,
            final,
          );
          assert.match(final, /^TIBET: /m);
          assert.deepEqual(await processesWith(marker), []);
        },
      );
    } finally {
      await w.close();
    }
  },
);
