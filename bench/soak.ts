/**
 * The long reliability runs, too slow for `deno task test` (about 6-8 minutes on
 * 2 cores): each against its own local Synapse and agent process.
 *
 * 1. Synapse SIGKILLed while a command runs, both when the command ends after
 *    Synapse is back and while it is down (`deno task test` does the same).
 * 2. The agent SIGKILLed at random moments over 20 cycles while the operator
 *    keeps sending (`deno task test` does 6, to stay in CI's time budget).
 * 3. All 5,000 hostile event contents end to end through Synapse and E2EE
 *    (`deno task test` sends 1,000 that way and all 5,000 in-process).
 *
 * Run: `./deno run -A bench/soak.ts [--only kill|chaos|hostile] [--cycles N] [--seed N]`.
 * Prints one line per scenario and exits 1 if any failed.
 * @module
 */

import assert from "node:assert/strict";
import { startWorld, type World } from "../tests/support/fixture.ts";
import { agentKillScenario, auditTokens, errorLines, homeserverKillScenario } from "./chaos.ts";
import { CANARY, hostileCorpus, judgeOutcome, sendCorpus } from "./hostile_corpus.ts";

const ENV = {
  TIBET_NC_RATE_LIMIT: "100000",
  TIBET_NC_MAX_CONCURRENT: "64",
};

function arg(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

const log = (msg: string) => console.error(`[soak] ${msg}`);

async function withRoom<T>(
  env: Record<string, string>,
  fn: (w: World, room: string) => Promise<T>,
): Promise<T> {
  const w = await startWorld(env);
  try {
    const room = await w.operator.createRoom([w.agentUser.userId]);
    await w.operator.waitForJoin(room, w.agentUser.userId);
    const warm = await w.operator.send(room, "$ echo warm");
    await w.operator.waitForFinal(room, warm);
    return await fn(w, room);
  } finally {
    await w.close();
  }
}

/** Scenario 1: Synapse SIGKILLed while a command runs. */
async function homeserverKills(): Promise<string> {
  return await withRoom(ENV, async (w, room) => {
    const out: string[] = [];
    for (const endDuringOutage of [false, true]) {
      const what = endDuringOutage ? "ends during the outage" : "ends after the outage";
      try {
        const r = await homeserverKillScenario(w, room, { endDuringOutage, timeoutMs: 60_000 });
        out.push(`${what}: ok (outage ${r.outageMs} ms, reply after ${r.replyMs} ms)`);
      } catch (e) {
        out.push(`${what}: FAILED: ${(e as Error).message.split("\n")[0]}`);
      }
    }
    const failed = out.some((l) => l.includes("FAILED"));
    const text = out.join("; ");
    if (failed) throw new Error(text);
    return text;
  });
}

/** Scenario 2: the agent SIGKILLed at random moments. */
async function agentKills(cycles: number, seed?: number): Promise<string> {
  return await withRoom(ENV, async (w, room) => {
    const r = await agentKillScenario(w, room, { cycles, seed, log });
    return JSON.stringify(r);
  });
}

/** Scenario 3: 5,000 hostile contents end to end. */
async function hostile(total: number): Promise<string> {
  return await withRoom({ ...ENV, TIBET_NC_TIMEBOX: "600" }, async (w, room) => {
    let exited = false;
    w.agent.status.then(() => exited = true);
    const marker = `${w.stateDir}.canary-ran`;
    await Deno.writeTextFile(
      `${w.binDir}/${CANARY}`,
      `#!/bin/sh\ntouch '${marker}'\necho canary ran\n`,
      { mode: 0o755 },
    );
    w.operator.client.scheduler = undefined;
    const started = Date.now();
    const sent = await sendCorpus(
      {
        client: w.operator.client,
        roomId: room,
        homeserver: w.synapse.url,
        accessToken: w.operatorUser.accessToken,
        operatorId: w.operator.userId,
      },
      hostileCorpus(total),
      8,
      (n) => log(`hostile: ${n} sent`),
    );
    const sendMs = Date.now() - started;
    const ok = await w.operator.send(room, "$ echo ok");
    assert.match(await w.operator.waitForFinal(room, ok, 600_000), /^ok$/m);
    const doneMs = Date.now() - started;
    await new Promise((r) => setTimeout(r, 2000));
    const outcome = judgeOutcome(sent, await auditTokens(w.stateDir), true);
    assert.equal(exited, false, "the agent process is alive");
    assert.deepEqual(errorLines(w.agent.lines), [], "no unexpected error in the agent's log");
    await assert.rejects(Deno.stat(marker), Deno.errors.NotFound, "the canary ran");
    assert.deepEqual(outcome.wrong, [], "events whose outcome contradicts their case");
    let ran = 0, refused = 0, notSent = 0;
    for (const k of outcome.byKind.values()) {
      ran += k.ran;
      refused += k.refused;
      notSent += k.failed;
    }
    return `${sent.length} events in ${(sendMs / 1000).toFixed(0)} s ` +
      `(${(sent.length / (sendMs / 1000)).toFixed(0)}/s), agent caught up after ` +
      `${(doneMs / 1000).toFixed(0)} s; ran ${ran}, refused ${refused}, not sendable ${notSent}, ` +
      `canary never ran`;
  });
}

if (import.meta.main) {
  const only = arg("only");
  const cycles = Number(arg("cycles") ?? 20);
  const seed = arg("seed") ? Number(arg("seed")) : undefined;
  const scenarios: [string, () => Promise<string>][] = [
    ["kill", homeserverKills],
    ["chaos", () => agentKills(cycles, seed)],
    ["hostile", () => hostile(5000)],
  ];
  let failed = 0;
  for (const [name, run] of scenarios) {
    if (only && only !== name) continue;
    const t = Date.now();
    log(`${name}: starting`);
    try {
      const summary = await run();
      console.log(`ok     ${name} (${Math.round((Date.now() - t) / 1000)} s): ${summary}`);
    } catch (e) {
      failed++;
      console.log(
        `FAILED ${name} (${Math.round((Date.now() - t) / 1000)} s): ${(e as Error).message}`,
      );
    }
  }
  Deno.exit(failed ? 1 : 0);
}
