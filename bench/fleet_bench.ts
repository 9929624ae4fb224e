/**
 * The fleet section of `deno task bench`: `@all $ echo x` to N agents on one
 * Synapse, for each N of BENCH_FLEET_SIZES. Each size gets its own agents
 * (started concurrently, as `tests/support/startFleet` does, but on the bench's
 * Synapse) and its own encrypted room with one operator; after warm-up rounds it
 * times R rounds from the send to the moment the N-th host's final answer (its
 * `TIBET: ` provenance line) is seen, and samples the CPU time (utime + stime in
 * /proc/<pid>/stat) of Synapse, of each agent and of the operator (this process)
 * over those rounds, and over an idle window before them. The agents are stopped
 * before the next size.
 * @module
 */

import assert from "node:assert/strict";
import { MatrixEventEvent, RoomEvent } from "matrix-js-sdk";
import type { Registered, Synapse } from "../tests/support/synapse.ts";
import type { Operator } from "../tests/support/operator.ts";
import { type AgentProcess, startAgentProcess } from "../tests/support/agent_process.ts";

/** What one fleet size measured; times in ms, CPU in seconds. */
export interface FleetFigures {
  size: number;
  rounds: number;
  /** Send to the N-th host's final answer, each round. */
  allMs: number[];
  /** Send to the first host's final answer, each round. */
  firstMs: number[];
  /** Wall time of the measured rounds. */
  wallS: number;
  synapseCpuS: number;
  /** CPU seconds of each agent process over the rounds (threads included, commands not). */
  agentCpuS: number[];
  /** CPU seconds of the commands each agent ran (its reaped children: `script`, `echo`). */
  agentChildCpuS: number[];
  /** The operator's client (this process) over the rounds. */
  operatorCpuS: number;
  /** An idle window before the rounds: its length, Synapse's and the agents' mean CPU. */
  idleS: number;
  idleSynapseCpuS: number;
  idleAgentCpuS: number;
  /** Mean VmRSS of the agents after the rounds, in bytes. */
  agentRss: number;
  /** Spawn of all N agents to the last one's `ready:`. */
  startMs: number;
}

/** What the fleet section needs from the bench. */
export interface FleetSetup {
  synapse: Synapse;
  operator: Operator;
  operatorUser: Registered;
  binDir: string;
  log: (msg: string) => void;
}

const TICK = clockTicks();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `getconf CLK_TCK`, usually 100. */
function clockTicks(): number {
  try {
    const out = new Deno.Command("getconf", { args: ["CLK_TCK"], stdout: "piped" }).outputSync();
    const n = Number(new TextDecoder().decode(out.stdout).trim());
    return n > 0 ? n : 100;
  } catch {
    return 100;
  }
}

/** CPU seconds of `pid` itself (utime + stime) and of its reaped children (cutime + cstime). */
export function cpuOf(pid: number | "self"): { self: number; children: number } {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the command name, which is in parentheses and may hold spaces.
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
  // f[0] is field 3 (state): utime is field 14, stime 15, cutime 16, cstime 17.
  return { self: (f[11] + f[12]) / TICK, children: (f[13] + f[14]) / TICK };
}

/** The pid of the Synapse whose data dir is `dir` (its command line names its config). */
export function synapsePid(dir: string): number {
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const cmd = Deno.readTextFileSync(`/proc/${e.name}/cmdline`);
      if (cmd.includes(`${dir}/homeserver.yaml`)) return Number(e.name);
    } catch { /* gone */ }
  }
  throw new Error(`no Synapse process for ${dir}`);
}

function rss(pid: number): number {
  const m = Deno.readTextFileSync(`/proc/${pid}/status`).match(/^VmRSS:\s+(\d+) kB/m);
  return Number(m?.[1] ?? NaN) * 1024;
}

/** The hosts whose final answer (provenance line, and `tag` in it) to `eventId` has been seen. */
function finals(op: Operator, roomId: string, eventId: string, tag: RegExp): string[] {
  const hosts: string[] = [];
  for (const ev of op.notices(roomId)) {
    const rel = ev.getOriginalContent()["m.relates_to"];
    if (rel?.rel_type === "m.replace" || rel?.["m.in_reply_to"]?.event_id !== eventId) continue;
    const body: string = op.edits(roomId, ev.getId()!).at(-1) ?? ev.getOriginalContent().body;
    if (/^TIBET: /m.test(body) && tag.test(body)) hosts.push(body.split(/[:\n]/)[0]);
  }
  return hosts;
}

/**
 * Sends `@all $ echo <tag>` and waits until every one of `hosts` answered it;
 * returns the ms to the first and to the last final answer. Checks on every
 * timeline event and decryption the operator's client sees (the operator's own
 * listeners, registered first, have noted it by then), and every 20 ms.
 */
async function allRound(
  op: Operator,
  roomId: string,
  hosts: string[],
  tag: string,
  timeoutMs = 120_000,
): Promise<{ firstMs: number; allMs: number }> {
  const want = new RegExp(`^${tag}$`, "m");
  const t0 = performance.now();
  let eventId: string | undefined;
  let firstMs = NaN;
  let check = () => {};
  const done = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      const got = eventId ? finals(op, roomId, eventId, want) : [];
      reject(new Error(`@all ${tag}: ${got.length}/${hosts.length} answered (${got})`));
    }, timeoutMs);
    check = () => {
      if (eventId === undefined) return;
      const got = new Set(finals(op, roomId, eventId, want));
      if (got.size > 0 && Number.isNaN(firstMs)) firstMs = performance.now() - t0;
      if (hosts.every((h) => got.has(h))) {
        clearTimeout(timer);
        resolve(performance.now() - t0);
      }
    };
  });
  const onEvent = () => check();
  op.client.on(RoomEvent.Timeline, onEvent);
  op.client.on(MatrixEventEvent.Decrypted, onEvent);
  const poll = setInterval(() => check(), 20);
  try {
    eventId = await op.send(roomId, `@all $ echo ${tag}`);
    check();
    const allMs = await done;
    return { firstMs, allMs };
  } finally {
    clearInterval(poll);
    op.client.off(RoomEvent.Timeline, onEvent);
    op.client.off(MatrixEventEvent.Decrypted, onEvent);
  }
}

/** Starts `n` fleet agents concurrently, each with its own account and state dir. */
async function startAgents(
  s: FleetSetup,
  n: number,
  cleanups: (() => Promise<unknown>)[],
): Promise<{ hosts: string[]; users: Registered[]; procs: AgentProcess[] }> {
  const hosts = Array.from({ length: n }, (_, i) => `n${n}-h${i + 1}`);
  const started = await Promise.all(hosts.map(async (host) => {
    const user = await s.synapse.register(`fleet-${host}`, crypto.randomUUID());
    const stateDir = await Deno.makeTempDir({ prefix: `tibet-nc-bench-fleet-${host}-` });
    cleanups.push(() => Deno.remove(stateDir, { recursive: true }));
    const proc = await startAgentProcess({
      MATRIX_HOMESERVER: s.synapse.url,
      TIBET_NC_USER_ID: user.userId,
      TIBET_NC_ACCESS_TOKEN: user.accessToken,
      TIBET_NC_ALLOWED_USERS: s.operatorUser.userId,
      TIBET_NC_STATE_DIR: stateDir,
      TIBET_NC_BIN_DIR: s.binDir,
      TIBET_NC_EXEC_AS_SELF: "yes",
      TIBET_NC_HOSTNAME: host,
      TIBET_NC_FLEET: "yes",
      TIBET_NC_FLEET_HINT: "no",
      TIBET_NC_TAGS: "",
      TIBET_NC_RATE_LIMIT: "100000",
    });
    cleanups.push(() => proc.kill("SIGKILL"));
    return { user, proc };
  }));
  const procs = started.map((a) => a.proc);
  await Promise.all(procs.map((p) => p.waitFor(/^ready:/, 180_000)));
  return { hosts, users: started.map((a) => a.user), procs };
}

/** One fleet size: start, room, warm-up, idle window, measured rounds, stop. */
export async function fleetSize(
  s: FleetSetup,
  n: number,
  rounds: number,
  warmups = 3,
  idleMs = 5000,
): Promise<FleetFigures> {
  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    s.log(`fleet: starting ${n} agent(s)`);
    const t = performance.now();
    const { hosts, users, procs } = await startAgents(s, n, cleanups);
    const startMs = performance.now() - t;
    const op = s.operator;
    const roomId = await op.createRoom(users.map((u) => u.userId));
    for (const u of users) await op.waitForJoin(roomId, u.userId, 120_000);
    for (let i = 0; i < warmups; i++) await allRound(op, roomId, hosts, `w${n}x${i}`);

    const spid = synapsePid(s.synapse.dir);
    const sample = () => ({
      at: performance.now(),
      synapse: cpuOf(spid).self,
      agents: procs.map((p) => cpuOf(p.pid)),
      op: cpuOf("self").self,
    });
    // Idle: what N syncing agents cost with nothing to do.
    await sleep(1000); // the last warm-up's stray edits and receipts
    const i0 = sample();
    await sleep(idleMs);
    const i1 = sample();

    s.log(`fleet: ${n} agent(s), ${rounds} rounds of @all $ echo`);
    const allMs: number[] = [];
    const firstMs: number[] = [];
    const c0 = sample();
    for (let i = 0; i < rounds; i++) {
      const r = await allRound(op, roomId, hosts, `r${i}`);
      allMs.push(r.allMs);
      firstMs.push(r.firstMs);
    }
    const c1 = sample();
    assert.equal(allMs.length, rounds);
    const agentRss = procs.reduce((a, p) => a + rss(p.pid), 0) / n;
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    for (const p of procs) await p.kill("SIGTERM");
    return {
      size: n,
      rounds,
      allMs,
      firstMs,
      wallS: (c1.at - c0.at) / 1000,
      synapseCpuS: c1.synapse - c0.synapse,
      agentCpuS: procs.map((_, k) => c1.agents[k].self - c0.agents[k].self),
      agentChildCpuS: procs.map((_, k) => c1.agents[k].children - c0.agents[k].children),
      operatorCpuS: c1.op - c0.op,
      idleS: (i1.at - i0.at) / 1000,
      idleSynapseCpuS: i1.synapse - i0.synapse,
      idleAgentCpuS: mean(procs.map((_, k) => i1.agents[k].self - i0.agents[k].self)),
      agentRss,
      startMs,
    };
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  }
}
