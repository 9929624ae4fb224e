/**
 * Fault-injection scenarios shared by `tests/reliability_test.ts` (short runs in
 * `deno task test`) and `bench/soak.ts` (the long runs): the homeserver killed
 * while a command runs, and the agent killed at random moments while an operator
 * keeps sending. Each scenario checks its outcome with `node:assert/strict` and
 * returns what it saw; nothing here asserts a duration.
 * @module
 */

import assert from "node:assert/strict";
import type { World } from "../tests/support/fixture.ts";
import { type AgentProcess, startAgentProcess } from "../tests/support/agent_process.ts";
import { oneTimeKeyCount } from "../tests/support/synapse.ts";

/** The token of one audit record, as far as these scenarios read it. */
export interface AuditToken {
  token_type: string;
  eraan: string[];
}

/** Reads every record's token from `$stateDir/audit.jsonl` (missing file: none). */
export async function auditTokens(stateDir: string): Promise<AuditToken[]> {
  let text = "";
  try {
    text = await Deno.readTextFile(`${stateDir}/audit.jsonl`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return text.split("\n").filter((l) => l.trim() !== "").map((l) =>
    (JSON.parse(l) as { token: AuditToken }).token
  );
}

/** How many `nc.command.execute` records name each event id (in `token.eraan`). */
export async function executeCounts(stateDir: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const t of await auditTokens(stateDir)) {
    if (t.token_type !== "nc.command.execute") continue;
    for (const id of t.eraan) counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

/** Waits until the audit log holds an `nc.command.execute` record for `eventId`. */
export async function waitForExecuteRecord(
  stateDir: string,
  eventId: string,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await executeCounts(stateDir)).has(eventId)) return;
    await delay(50);
  }
  throw new Error(`no nc.command.execute record for ${eventId} after ${timeoutMs} ms`);
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * The rust crypto's warning when it cannot decrypt a to-device message from a
 * known device: after a restart, a message it had decrypted (and acted on) before
 * the kill. Harmless while the room key it carried is in the store.
 */
export const OLM_WEDGE = /Failed to decrypt a (non-)?pre-key message/;

/** Log lines that mean the agent hit an unexpected error. */
export function errorLines(lines: string[]): string[] {
  return lines.filter((l) => /error handling|^fatal|Uncaught|panicked/.test(l));
}

/** What {@linkcode homeserverKillScenario} saw. */
export interface HomeserverKillResult {
  /** Milliseconds from the SIGKILL until Synapse answered again. */
  outageMs: number;
  /** Milliseconds from sending the command until its final reply. */
  replyMs: number;
  /** The final reply. */
  body: string;
}

let gates = 0;

/**
 * Puts a program into the world's bin dir that waits (at most `maxS` seconds)
 * until a file exists, then prints `gate open`; returns its name and a function
 * that opens the gate. A command whose end the test decides, whatever the load.
 */
export async function installGate(
  w: World,
  maxS = 120,
): Promise<{ name: string; open(): Promise<void> }> {
  const name = `gate${++gates}`;
  const file = `${w.binDir}.${name}.open`;
  await Deno.writeTextFile(
    `${w.binDir}/${name}`,
    `#!/bin/sh\ni=0\nwhile [ ! -e '${file}' ] && [ $i -lt ${maxS * 5} ]; do sleep 0.2; ` +
      `i=$((i+1)); done\necho gate open\n`,
    { mode: 0o755 },
  );
  return { name, open: () => Deno.writeTextFile(file, "") };
}

/**
 * Sends a command that runs until the test lets it end, waits until its
 * `nc.command.execute` record is on disk (it runs), SIGKILLs Synapse and starts it
 * again on the same port and data. The command ends after Synapse is back, or,
 * with `endDuringOutage`, while it is down. Then the final reply must arrive and
 * the audit log must hold exactly one execute record for the event.
 */
export async function homeserverKillScenario(
  w: World,
  room: string,
  opts: { endDuringOutage: boolean; timeoutMs?: number },
): Promise<HomeserverKillResult> {
  const gate = await installGate(w);
  const sent = Date.now();
  const id = await w.operator.send(room, `$ ${gate.name}`);
  await waitForExecuteRecord(w.stateDir, id);
  const killed = Date.now();
  const restarted = w.synapse.restart().then(() => Date.now() - killed);
  if (opts.endDuringOutage) {
    await delay(500); // restart() has killed Synapse; starting it takes seconds
    await gate.open();
  }
  const outageMs = await restarted;
  if (!opts.endDuringOutage) await gate.open();
  const body = await w.operator.waitForFinal(room, id, opts.timeoutMs ?? 90_000);
  const replyMs = Date.now() - sent;
  assert.match(body, /gate open/, `the command ran to its end: ${body}`);
  assert.match(body, /^exit 0 /m, `the command ran to its end: ${body}`);
  assert.equal((await executeCounts(w.stateDir)).get(id), 1, "executed exactly once");
  return { outageMs, replyMs, body };
}

/** Options of {@linkcode agentKillScenario}. */
export interface AgentKillOptions {
  /** Kill-and-restart cycles. */
  cycles: number;
  /** Longest random wait before a kill, in ms (default 3000). */
  maxKillDelayMs?: number;
  /** Every `startupKillEvery`-th cycle kills during start-up, before `ready:` (default 3; 0 never). */
  startupKillEvery?: number;
  /** Pause between the operator's background commands, in ms (default 400). */
  sendEveryMs?: number;
  /** Progress lines (default: none). */
  log?: (msg: string) => void;
  /** Seed of the kill timings, for reproduction (default: random; it is returned). */
  seed?: number;
}

/** What is known about a command that got no answer, for the failure message. */
async function diagnose(
  w: World,
  agent: AgentProcess,
  eventId: string,
  where: string,
  cause: unknown,
): Promise<string> {
  const seen = await Deno.readTextFile(`${w.stateDir}/seen-events`).catch(() => "");
  const records = (await auditTokens(w.stateDir)).filter((t) => t.eraan.includes(eventId));
  const room = w.operator.client.getRooms().find((r) => r.findEventById(eventId));
  const ev = room?.findEventById(eventId);
  return [
    `${where}: no answer to ${eventId}: ${(cause as Error).message}`,
    `in seen-events: ${seen.includes(eventId)}; audit records: ${
      records.map((t) => t.token_type).join(", ") || "none"
    }`,
    `operator's view of the command: ${ev ? ev.getWireType() : "not in its timeline"}`,
    "agent log (last 40 lines):",
    ...agent.lines.slice(-40),
  ].join("\n");
}

/** Sends `$ echo <word>` and waits for its answer; throws what is known if none comes. */
async function answered(
  w: World,
  agent: AgentProcess,
  room: string,
  word: string,
  where: string,
): Promise<string> {
  const eventId = await w.operator.send(room, `$ echo ${word}`);
  let failure: unknown;
  try {
    const body = await w.operator.waitForFinal(room, eventId, 45_000);
    if (new RegExp(word).test(body)) return eventId;
    failure = new Error(`answered with: ${body}`);
  } catch (e) {
    failure = e;
  }
  throw new Error(await diagnose(w, agent, eventId, where, failure));
}

/** What {@linkcode agentKillScenario} saw. */
export interface AgentKillResult {
  seed: number;
  cycles: number;
  /** Kills that hit before `ready:`. */
  startupKills: number;
  /** Background commands sent while the agent was being killed and restarted. */
  sent: number;
  /** Of those, how many have an execute record (the rest expired or were cut off). */
  executed: number;
  /**
   * Commands a kill cut off between the replay claim and the audit record: not
   * run, and answered "not run" by the next run (`nc.command.interrupted`).
   */
  claimedNotRun: number;
  /** Probe commands (one per cycle, after `ready:`) answered. */
  probesAnswered: number;
  /** Cycles in which the agent logged that it could not decrypt a redelivered to-device message. */
  redeliveredOlmMessages: number;
  /** One-time keys the homeserver holds for the agent at the end. */
  oneTimeKeys: number;
  /** Median time from spawn to `ready:` over the restarts, in ms. */
  medianRestartMs: number;
}

/** A small deterministic PRNG (mulberry32), so a failing run can be repeated. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Kills the agent with SIGKILL at random moments over `cycles` cycles while the
 * operator keeps sending `$ echo` commands. After each restart the agent must
 * reach `ready:` (its crypto store is readable) and answer a new command (E2EE
 * continues); at the end no event id may have more than one execute record
 * (nothing replays), every claimed command must end with a record (none lost
 * unanswered), no agent may have logged an unexpected error, and the homeserver
 * must hold no more one-time keys than one upload's worth (none forgotten).
 */
export async function agentKillScenario(
  w: World,
  room: string,
  opts: AgentKillOptions,
): Promise<AgentKillResult> {
  const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
  const rand = prng(seed);
  const maxDelay = opts.maxKillDelayMs ?? 3000;
  const startupEvery = opts.startupKillEvery ?? 3;
  const log = opts.log ?? (() => {});
  log(`agent kill scenario, seed ${seed}`);
  const background: string[] = [];
  const probes: string[] = [];
  let redelivered = 0;
  const restartMs: number[] = [];
  const allLines: string[] = [];
  let startupKills = 0;

  // The operator's background traffic: one command every sendEveryMs.
  let sending = true;
  const sender = (async () => {
    for (let i = 0; sending; i++) {
      try {
        background.push(await w.operator.send(room, `$ echo bg-${i}`));
      } catch (e) {
        log(`background send ${i} failed: ${(e as Error).message}`);
      }
      await delay(opts.sendEveryMs ?? 400);
    }
  })();

  await w.agent.kill("SIGKILL");
  allLines.push(...w.agent.lines);
  let agent: AgentProcess | null = null;
  try {
    for (let cycle = 1; cycle <= opts.cycles; cycle++) {
      const startupKill = startupEvery > 0 && cycle % startupEvery === 0;
      const spawned = Date.now();
      agent = await startAgentProcess(w.env);
      if (startupKill) {
        // Somewhere in start-up: Worker start, crypto store open, first sync.
        await delay(50 + rand() * 700);
        const before = agent.lines.some((l) => /^ready:/.test(l));
        if (!before) startupKills++;
        await agent.kill("SIGKILL");
        allLines.push(...agent.lines);
        log(`cycle ${cycle}: killed ${before ? "after" : "during"} start-up`);
        agent = await startAgentProcess(w.env);
      }
      const started = Date.now();
      await agent.waitFor(/^ready:/, 90_000);
      restartMs.push(Date.now() - started);
      const from = agent.lines.length;
      probes.push(
        await answered(w, agent, room, `probe-${cycle}`, `cycle ${cycle} (seed ${seed})`),
      );
      if (agent.lines.slice(from).some((l) => OLM_WEDGE.test(l))) redelivered++;
      const wait = rand() * maxDelay;
      await delay(wait);
      await agent.kill("SIGKILL");
      allLines.push(...agent.lines);
      log(
        `cycle ${cycle}: ready after ${restartMs.at(-1)} ms (spawned ${
          started - spawned
        } ms before), killed ${Math.round(wait)} ms after the probe's answer`,
      );
      agent = null;
    }
  } finally {
    sending = false;
    await sender;
    if (agent) {
      await agent.kill("SIGKILL");
      allLines.push(...agent.lines);
    }
  }

  // Leave the world with a running agent, as the fixture expects, and prove
  // once more that it answers.
  const last = await w.restartAgent("SIGKILL");
  await answered(w, last, room, "after-chaos", `after the cycles (seed ${seed})`);
  allLines.push(...last.lines);

  const counts = await executeCounts(w.stateDir);
  const replayed = [...counts].filter(([, n]) => n > 1);
  assert.deepEqual(replayed, [], "an event id was executed more than once");
  for (const p of probes) assert.equal(counts.get(p), 1, `probe ${p} executed once`);
  assert.deepEqual(errorLines(allLines), [], "the agent logged an unexpected error");
  const oneTimeKeys = await oneTimeKeyCount(w.synapse.url, w.env.TIBET_NC_ACCESS_TOKEN);
  // The rust crypto keeps at most 50 on the server; forgotten uploads pile up past that.
  assert.ok(oneTimeKeys <= 50, `the homeserver holds ${oneTimeKeys} one-time keys of the agent`);
  const executed = background.filter((id) => counts.has(id)).length;
  // Every claimed command ends with a record: run, refused, or answered as cut off
  // by the run after the kill (the last agent answers its predecessors' in the background).
  const claims = (await Deno.readTextFile(`${w.stateDir}/seen-events`).catch(() => ""))
    .split("\n").flatMap((l) => l.match(/^\d+ (\S+)/)?.[1] ?? []);
  let unrecorded: string[] = [];
  for (const deadline = Date.now() + 30_000; Date.now() < deadline; await delay(250)) {
    const recorded = new Set((await auditTokens(w.stateDir)).flatMap((t) => t.eraan));
    unrecorded = claims.filter((id) => !recorded.has(id));
    if (unrecorded.length === 0) break;
  }
  assert.deepEqual(unrecorded, [], "claimed commands that were never answered");
  const claimedNotRun = (await auditTokens(w.stateDir))
    .filter((t) => t.token_type === "nc.command.interrupted").length;
  restartMs.sort((a, b) => a - b);
  return {
    seed,
    cycles: opts.cycles,
    startupKills,
    sent: background.length,
    executed,
    claimedNotRun,
    probesAnswered: probes.length,
    redeliveredOlmMessages: redelivered,
    oneTimeKeys,
    medianRestartMs: restartMs[Math.floor(restartMs.length / 2)] ?? 0,
  };
}
