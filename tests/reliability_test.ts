import assert from "node:assert/strict";
import { startWorld } from "./support/fixture.ts";
import { SYNC_PAGE_EVENTS } from "../lib/matrix/client.ts";
import {
  agentKillScenario,
  auditTokens,
  delay,
  errorLines,
  executeCounts,
  homeserverKillScenario,
  installGate,
  waitForExecuteRecord,
} from "../bench/chaos.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const ENV = { TIBET_NC_RATE_LIMIT: "100000", TIBET_NC_MAX_CONCURRENT: "64" };
const log = (msg: string) => console.log(msg);

/** Commands sent while the agent is paused: more than two of Synapse's sync pages. */
const GAP = 25;

Deno.test(
  "Synapse SIGKILLed while a command runs: the agent reconnects, answers once, runs once",
  opts,
  async (t) => {
    // Commands sent while the agent is paused must not expire before it answers them.
    const w = await startWorld({ ...ENV, TIBET_NC_TIMEBOX: "120" });
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

      await t.step(
        "commands sent while the agent could not sync, past Synapse's default page, are all answered",
        async () => {
          // Synapse's default page is 10 events: past it, a sync is "limited" and the
          // SDK skips the gap, so the earliest commands were never seen.
          Deno.kill(w.agent.pid, "SIGSTOP");
          const ids: string[] = [];
          try {
            for (let i = 0; i < GAP; i++) ids.push(await operator.send(room, `$ echo gap-${i}`));
          } finally {
            Deno.kill(w.agent.pid, "SIGCONT");
          }
          for (let i = 0; i < GAP; i++) {
            assert.match(await operator.waitForFinal(room, ids[i]), new RegExp(`gap-${i}\\b`));
          }
        },
      );

      await t.step(
        "a homeserver rate-limiting the agent delays replies but loses none",
        async () => {
          const admin = await w.synapse.register("admin", crypto.randomUUID(), true);
          const limit = (method: string, body?: unknown) =>
            fetch(
              `${w.synapse.url}/_synapse/admin/v1/users/${w.agentUser.userId}/override_ratelimit`,
              {
                method,
                headers: { authorization: `Bearer ${admin.accessToken}` },
                body: body === undefined ? undefined : JSON.stringify(body),
              },
            ).then((r) => r.body?.cancel());
          const before = w.agent.lines.length;
          await limit("POST", { messages_per_second: 2, burst_count: 2 });
          try {
            const ids: string[] = [];
            for (let i = 0; i < 12; i++) ids.push(await operator.send(room, `$ echo limited-${i}`));
            for (let i = 0; i < ids.length; i++) {
              assert.match(
                await operator.waitForFinal(room, ids[i]),
                new RegExp(`limited-${i}\\b`),
              );
            }
          } finally {
            await limit("DELETE");
          }
          const retried = w.agent.lines.slice(before).filter((l) =>
            /^(reply to|edit of) \S+ failed \(.*\); retrying in/.test(l)
          );
          assert.ok(retried.length > 0, "the homeserver never rate-limited the agent: no proof");
          const waits = new Set(retried.map((l) => l.match(/retrying in (\S+ s)/)?.[1]));
          log(`${retried.length} sends rate-limited; waits ${[...waits].join(", ")}`);
        },
      );

      await t.step(
        "past the agent's own sync page, the gap is logged, not skipped quietly",
        async () => {
          Deno.kill(w.agent.pid, "SIGSTOP");
          try {
            // Chat, not commands: the agent ignores them, but they fill the page.
            for (let i = 0; i < SYNC_PAGE_EVENTS + 10; i++) await operator.send(room, `chat ${i}`);
          } finally {
            Deno.kill(w.agent.pid, "SIGCONT");
          }
          await w.agent.waitFor(new RegExp(`more than ${SYNC_PAGE_EVENTS} events arrived in`));
        },
      );

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

Deno.test(
  "commands a SIGKILL cut off are answered by the next run and never run again",
  opts,
  async (t) => {
    const w = await startWorld(ENV);
    try {
      const { operator } = w;
      const room = await operator.createRoom([w.agentUser.userId]);
      await operator.waitForJoin(room, w.agentUser.userId);

      await t.step("killed while it ran: answered 'interrupted', not run again", async () => {
        const gate = await installGate(w, 20);
        const id = await operator.send(room, `$ ${gate.name}`);
        await waitForExecuteRecord(w.stateDir, id);
        await w.restartAgent("SIGKILL", () => gate.open());
        const body = await operator.waitForFinal(room, id);
        assert.match(body, /^interrupted: the agent stopped while this command ran/m);
        assert.doesNotMatch(body, /gate open/, "the output of a second run");
        await new Promise((r) => setTimeout(r, 1500));
        assert.equal((await executeCounts(w.stateDir)).get(id), 1, "executed once");
        const results = (await auditTokens(w.stateDir)).filter((tk) =>
          tk.token_type === "nc.command.result" && tk.eraan.includes(id)
        );
        assert.equal(results.length, 1, "one result record closes the command");
      });

      await t.step("a running command does not outlive a SIGKILLed agent", async () => {
        const secs = String(3000 + Math.floor(Math.random() * 5000));
        const running = async () => {
          const out = await new Deno.Command("pgrep", {
            args: ["-f", `/sleep ${secs}$`],
            stdout: "piped",
          }).output();
          return new TextDecoder().decode(out.stdout).trim();
        };
        const id = await operator.send(room, `$ sleep ${secs}`);
        await waitForExecuteRecord(w.stateDir, id);
        for (let i = 0; i < 50 && await running() === ""; i++) await delay(100);
        assert.notEqual(await running(), "", "the command started");
        await w.agent.kill("SIGKILL");
        for (let i = 0; i < 50 && await running() !== ""; i++) await delay(100);
        assert.equal(await running(), "", "the command still runs after the agent died");
        await w.restartAgent("SIGKILL");
        assert.match(await operator.waitForFinal(room, id), /^interrupted:/m);
      });

      await t.step("killed between the replay claim and the audit record: 'not run'", async () => {
        const word = `claimed-${crypto.randomUUID()}`;
        let id = "";
        // What the SIGKILL leaves: the claim on disk, nothing in the audit log.
        await w.restartAgent("SIGKILL", async () => {
          id = await operator.send(room, `$ echo ${word}`);
          await Deno.writeTextFile(
            `${w.stateDir}/seen-events`,
            `${Date.now()} ${id} ${room} ${operator.userId}\n`,
            { append: true },
          );
        });
        const body = await operator.waitForFinal(room, id);
        assert.match(body, /^not run: the agent restarted before answering this command/m);
        assert.doesNotMatch(body, new RegExp(`^${word}$`, "m"), "it ran");
        assert.equal((await executeCounts(w.stateDir)).get(id), undefined, "no execute record");
        const again = await operator.send(room, "$ echo after");
        assert.match(await operator.waitForFinal(room, again), /^after$/m);
        assert.equal(
          operator.notices(room).filter((n) =>
            n.getContent()["m.relates_to"]?.["m.in_reply_to"]?.event_id === id
          ).length,
          1,
          "answered once",
        );
      });

      await t.step("a further restart answers nothing twice", async () => {
        const before = operator.notices(room).length;
        await w.restartAgent("SIGTERM");
        const id = await operator.send(room, "$ echo quiet");
        await operator.waitForFinal(room, id);
        assert.equal(operator.notices(room).length, before + 1, "only the new command's reply");
        assert.deepEqual(errorLines(w.agent.lines), []);
      });
    } finally {
      await w.close();
    }
  },
);
