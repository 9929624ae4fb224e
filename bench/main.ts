/**
 * `deno task bench`: speed and memory of the agent against a local Synapse, each
 * figure next to its baseline measured in the same run. Prints a table and the
 * machine, and writes `bench/results/latest.json`. Asserts no timing; it fails
 * only if a command is lost or answered twice.
 *
 * | figure | baseline |
 * |---|---|
 * | round trip `$ echo x` → final reply, p50/p95 | the floor: a bare E2EE echo bot (`tests/support/echo_bot.ts`) |
 * | cold start to `ready:`, empty / warm state dir | the echo bot's start to ready; a bare `deno run` |
 * | idle RSS after ready | the echo bot's idle RSS |
 * | peak RSS while a command prints 1 GB | the agent's RSS just before the command (after the sections before it) |
 * | 200 commands from 2 operators: total, p95 | the echo bot, same load |
 * | `audit verify` of 100,000 records | `sha256sum` of the same file |
 * | `get` / `put` of a 100 MB file, and the agent's RSS growth meanwhile | a bare upload + download of the same bytes; the file's size |
 * | `@all $ echo x` to 5 and 10 agents: until all answered, p50/p95; CPU of Synapse and per agent | the same with 1 agent |
 * | `tibet-nc connect HOST -- echo x`, whole process, warm state, p50 | the agent's round trip, same run; `ssh localhost echo x` if an sshd listens |
 *
 * Run: `./deno run -A bench/main.ts`. Knobs (environment): BENCH_LATENCY_N (60),
 * BENCH_THROUGHPUT_N (200), BENCH_AUDIT_RECORDS (100000), BENCH_STARTS (3), BENCH_FILE_MB (100),
 * BENCH_FLEET_SIZES (1,5,10), BENCH_FLEET_ROUNDS (20), BENCH_CONNECT_N (10),
 * BENCH_SKIP (comma-separated sections to leave out: cold,latency,connect,1gb,pipeline,files,throughput,fleet,audit).
 * @module
 */

import assert from "node:assert/strict";
import {
  type Registered,
  startSynapse,
  type Synapse,
  SYNAPSE_VERSION,
} from "../tests/support/synapse.ts";
import { type Operator, startOperator } from "../tests/support/operator.ts";
import { type AgentProcess, startAgentProcess } from "../tests/support/agent_process.ts";
import { makeBinDir, TEST_PROGRAMS } from "../tests/support/fixture.ts";
import { startEchoBot } from "../tests/support/echo_bot.ts";
import { executeCounts } from "./chaos.ts";
import { runAuditBench } from "./audit_bench.ts";
import { fileFigures } from "./files_bench.ts";
import { type FleetFigures, fleetSize } from "./fleet_bench.ts";
import { connectFigures } from "./connect_bench.ts";

const LATENCY_N = Number(Deno.env.get("BENCH_LATENCY_N") ?? 60);
const THROUGHPUT_N = Number(Deno.env.get("BENCH_THROUGHPUT_N") ?? 200);
const AUDIT_RECORDS = Number(Deno.env.get("BENCH_AUDIT_RECORDS") ?? 100_000);
const STARTS = Number(Deno.env.get("BENCH_STARTS") ?? 3);
const FILE_MB = Number(Deno.env.get("BENCH_FILE_MB") ?? 100);
const FLEET_SIZES = (Deno.env.get("BENCH_FLEET_SIZES") ?? "1,5,10").split(",").map(Number)
  .filter((n) => n > 0);
const FLEET_ROUNDS = Number(Deno.env.get("BENCH_FLEET_ROUNDS") ?? 20);
const CONNECT_N = Number(Deno.env.get("BENCH_CONNECT_N") ?? 10);
/** Sections to leave out: cold,latency,connect,1gb,pipeline,files,throughput,fleet,audit. */
const SKIP = new Set((Deno.env.get("BENCH_SKIP") ?? "").split(",").filter(Boolean));
const ROOT = new URL("../", import.meta.url).pathname;
/** How long an agent runs after ready before the next start is timed. */
const SETTLE_MS = 2000;

/** One line of the result table. */
export interface Row {
  metric: string;
  value: number;
  unit: string;
  baseline: number | null;
  baselineName: string;
  /** value / baseline, when both are speeds or sizes of the same kind. */
  ratio: number | null;
}

/** The machine the figures were taken on. */
export interface Machine {
  cpus: number;
  model: string;
  memoryGiB: number;
  kernel: string;
  deno: string;
  synapse: string;
}

const log = (msg: string) => console.error(`[bench] ${msg}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The nearest-rank percentile `p` (0-100) of `xs`. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/** The median of `xs`. */
export function median(xs: number[]): number {
  return percentile(xs, 50);
}

/** Reads the machine's description from /proc. */
export function machine(): Machine {
  const cpuinfo = Deno.readTextFileSync("/proc/cpuinfo");
  const meminfo = Deno.readTextFileSync("/proc/meminfo");
  const kb = Number(meminfo.match(/^MemTotal:\s+(\d+) kB/m)?.[1] ?? 0);
  return {
    cpus: navigator.hardwareConcurrency,
    model: cpuinfo.match(/^model name\s*:\s*(.*)$/m)?.[1].trim() ?? "unknown",
    memoryGiB: Math.round((kb / 1048576) * 10) / 10,
    kernel: Deno.osRelease(),
    deno: Deno.version.deno,
    synapse: SYNAPSE_VERSION,
  };
}

/** A memory field of `/proc/<pid>/status`, in bytes. */
function vm(pid: number, field: "VmRSS" | "VmHWM" | "RssAnon" | "RssFile"): number {
  const m = Deno.readTextFileSync(`/proc/${pid}/status`).match(
    new RegExp(`^${field}:\\s+(\\d+) kB`, "m"),
  );
  return Number(m?.[1] ?? NaN) * 1024;
}

const MiB = 1048576;

/** The agent's environment for `user` with `stateDir`. */
function agentEnv(
  url: string,
  user: Registered,
  allowed: string[],
  stateDir: string,
  binDir: string,
): Record<string, string> {
  return {
    MATRIX_HOMESERVER: url,
    TIBET_NC_USER_ID: user.userId,
    TIBET_NC_ACCESS_TOKEN: user.accessToken,
    TIBET_NC_ALLOWED_USERS: allowed.join(","),
    TIBET_NC_STATE_DIR: stateDir,
    TIBET_NC_BIN_DIR: binDir,
    TIBET_NC_EXEC_AS_SELF: "yes",
    TIBET_NC_HOSTNAME: "bench",
    TIBET_NC_RATE_LIMIT: "100000",
    TIBET_NC_MAX_CONCURRENT: "64",
    TIBET_NC_COMMAND_TIMEOUT: "300",
    TIBET_NC_MAX_FILE_BYTES: String(1024 * 1024 * 1024),
  };
}

/** Milliseconds from spawning `start()` to its `ready:` line. */
async function timeToReady(start: () => Promise<AgentProcess> | AgentProcess) {
  const t = performance.now();
  const p = await start();
  await p.waitFor(/^ready:/, 120_000);
  return { ms: performance.now() - t, proc: p };
}

/** Creates an encrypted room with `members` (the first operator invites) and waits for joins. */
async function room(ops: Operator[], responder: string): Promise<string> {
  const [owner, ...others] = ops;
  const id = await owner.createRoom([responder, ...others.map((o) => o.userId)]);
  for (const o of others) {
    await o.client.joinRoom(id);
    await owner.waitForJoin(id, o.userId);
  }
  await owner.waitForJoin(id, responder);
  for (const o of others) await o.waitForJoin(id, responder);
  return id;
}

/** Sends `$ echo <tag>` and waits for the final reply; returns the milliseconds. */
async function roundTrip(op: Operator, roomId: string, tag: string): Promise<number> {
  const t = performance.now();
  const id = await op.send(roomId, `$ echo ${tag}`);
  const body = await op.waitForFinal(roomId, id, 60_000);
  const ms = performance.now() - t;
  assert.match(body, new RegExp(`^${tag}$`, "m"), `reply to ${tag}`);
  return ms;
}

/** What {@linkcode throughput} measured. */
interface Throughput {
  totalMs: number;
  perSecond: number;
  p50Ms: number;
  p95Ms: number;
  ids: string[];
}

/**
 * `n` commands, half from each operator, as a burst: each operator keeps
 * `inFlight` sends going (the SDK's one-at-a-time scheduler is switched off for
 * this), so the agent, not the senders, sets the pace. Each command must get
 * exactly one reply, carrying its own text. Latency counts from the
 * homeserver's acknowledgement of the command to the final reply.
 */
async function throughput(
  ops: Operator[],
  roomId: string,
  n: number,
  tag: string,
  responder: AgentProcess,
  inFlight = 4,
  timeoutMs = 180_000,
): Promise<Throughput> {
  const t0 = performance.now();
  const latencies: number[] = [];
  const ids: string[] = [];
  const waits: Promise<string | null>[] = [];
  await Promise.all(ops.map(async (op, k) => {
    const mine: number[] = [];
    for (let i = k; i < n; i += ops.length) mine.push(i);
    await Promise.all(Array.from({ length: inFlight }, async () => {
      for (let i = mine.shift(); i !== undefined; i = mine.shift()) {
        const text = `${tag}-${i}`;
        const id = await op.send(roomId, `$ echo ${text}`);
        const acked = performance.now();
        ids.push(id);
        waits.push(
          op.waitForFinal(roomId, id, timeoutMs).then((body) => {
            latencies.push(performance.now() - acked);
            return new RegExp(`^${text}$`, "m").test(body) ? null : `${id}: wrong reply ${body}`;
          }, (e) => `${id} (${op.userId}): ${(e as Error).message}`),
        );
      }
    }));
  }));
  const failed = (await Promise.all(waits)).filter((f) => f !== null);
  const totalMs = performance.now() - t0;
  if (failed.length > 0) throw new Error(lostReport(failed, ops, roomId, responder));
  await sleep(1000); // a duplicate reply would arrive now
  for (const id of ids) {
    const replies = ops[0].notices(roomId).filter((ev) =>
      ev.getContent()["m.relates_to"]?.["m.in_reply_to"]?.event_id === id
    );
    assert.equal(replies.length, 1, `exactly one reply to ${id}`);
  }
  return {
    totalMs,
    perSecond: n / (totalMs / 1000),
    p50Ms: median(latencies),
    p95Ms: percentile(latencies, 95),
    ids,
  };
}

/** What is known about commands that got no final reply. */
function lostReport(
  failed: string[],
  ops: Operator[],
  roomId: string,
  responder: AgentProcess,
): string {
  const out = [`${failed.length} command(s) got no final reply:`, ...failed.slice(0, 10)];
  for (const f of failed.slice(0, 10)) {
    const id = f.split(/[ :]/)[0];
    out.push(`responder log about ${id}:`, ...responder.lines.filter((l) => l.includes(id)));
  }
  for (const op of ops) {
    const undecryptable = (op.client.getRoom(roomId)?.getLiveTimeline().getEvents() ?? [])
      .filter((ev) => ev.isDecryptionFailure());
    out.push(`${op.userId} sees ${undecryptable.length} undecryptable event(s) in the room`);
  }
  out.push("responder log tail:", ...responder.lines.slice(-30));
  return out.join("\n");
}

/** Runs `cmd` directly and returns its wall time in ms. */
async function timeCommand(cmd: string, args: string[]): Promise<number> {
  const t = performance.now();
  const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output();
  if (!out.success) throw new Error(`${cmd} failed`);
  return performance.now() - t;
}

function fmt(v: number, unit: string): string {
  if (!Number.isFinite(v)) return "-";
  if (unit === "ms") {
    return v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${v.toFixed(v < 10 ? 2 : 0)} ms`;
  }
  if (unit === "s") return `${v.toFixed(v < 10 ? 2 : 1)} s`;
  if (unit === "MiB") return `${v.toFixed(0)} MiB`;
  if (unit === "/s") return `${v.toFixed(1)}/s`;
  if (unit === "%") return `${v.toFixed(1)}%`;
  return `${v} ${unit}`;
}

/** Prints the table. */
export function printTable(m: Machine, rows: Row[], notes: string[]): void {
  console.log(
    `machine: ${m.model}, ${m.cpus} CPUs, ${m.memoryGiB} GiB RAM, Linux ${m.kernel}; ` +
      `Deno ${m.deno}; Synapse ${m.synapse} (SQLite, 127.0.0.1)`,
  );
  const head = ["metric", "tibet-nc", "baseline", "ratio"];
  const cells = rows.map((r) => [
    r.metric,
    fmt(r.value, r.unit),
    r.baseline === null ? "-" : `${fmt(r.baseline, r.unit)} (${r.baselineName})`,
    r.ratio === null ? "-" : `${r.ratio.toFixed(2)}x`,
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((x, i) => x.padEnd(w[i])).join("  ").trimEnd();
  console.log(line(head));
  console.log(line(w.map((n) => "-".repeat(n))));
  for (const c of cells) console.log(line(c));
  for (const n of notes) console.log(`note: ${n}`);
}

function row(
  metric: string,
  value: number,
  unit: string,
  baseline: number | null = null,
  baselineName = "",
): Row {
  const ratio = baseline !== null && baseline > 0 ? value / baseline : null;
  return { metric, value, unit, baseline, baselineName, ratio };
}

/** What the sections share. */
interface Bench {
  synapse: Synapse;
  binDir: string;
  op1User: Registered;
  op2User: Registered;
  allowed: string[];
  rows: Row[];
  notes: string[];
  procs: AgentProcess[];
  cleanups: (() => Promise<unknown>)[];
  raw: Record<string, unknown>;
}

const pw = () => crypto.randomUUID();

async function tmpDir(b: Bench, prefix: string): Promise<string> {
  const d = await Deno.makeTempDir({ prefix });
  b.cleanups.push(() => Deno.remove(d, { recursive: true }));
  return d;
}

/**
 * Cold starts: the agent with an empty state dir (a new account each time, as on
 * a fresh install) and with a warm one, next to the echo bot (new device, keys in
 * memory). Runs first, while nothing else loads the machine. Returns the account
 * and state dir the rest of the benchmark uses.
 */
async function coldStarts(b: Bench): Promise<{ user: Registered; stateDir: string }> {
  const starts = SKIP.has("cold") ? 0 : STARTS;
  log(`cold starts (${starts} each)`);
  const bare: number[] = [];
  const empty: number[] = [];
  const warm: number[] = [];
  const bot: number[] = [];
  const hello = await Deno.makeTempFile({ suffix: ".ts" });
  b.cleanups.push(() => Deno.remove(hello));
  await Deno.writeTextFile(hello, "console.error('ready:');\n");
  for (let i = 0; i < starts; i++) bare.push(await timeCommand(Deno.execPath(), ["run", hello]));
  let main: { user: Registered; stateDir: string } | null = null;
  for (let i = 0; i < Math.max(starts, 1); i++) {
    const user = await b.synapse.register(`agent${i}`, pw());
    const stateDir = await tmpDir(b, "tibet-nc-bench-state-");
    const env = agentEnv(b.synapse.url, user, b.allowed, stateDir, b.binDir);
    const { ms, proc } = await timeToReady(() => startAgentProcess(env));
    empty.push(ms);
    // Let it finish what follows ready (its own /keys/query), as a running agent
    // has before any restart; stopped at once, the next start waits for it (~2 s).
    await sleep(SETTLE_MS);
    await proc.kill("SIGTERM");
    main ??= { user, stateDir };
  }
  const env = agentEnv(b.synapse.url, main!.user, b.allowed, main!.stateDir, b.binDir);
  for (let i = 0; i < starts; i++) {
    const { ms, proc } = await timeToReady(() => startAgentProcess(env));
    warm.push(ms);
    await sleep(SETTLE_MS);
    await proc.kill("SIGTERM");
  }
  for (let i = 0; i < starts; i++) {
    const u = await b.synapse.register(`botcold${i}`, pw());
    const { ms, proc } = await timeToReady(() =>
      startEchoBot({ homeserver: b.synapse.url, ...u, allowedUsers: b.allowed })
    );
    bot.push(ms);
    await proc.kill("SIGTERM");
  }
  if (starts > 0) {
    b.rows.push(
      row(
        `cold start to ready, empty state dir (median of ${starts})`,
        median(empty),
        "ms",
        median(bot),
        "echo bot, new device",
      ),
      row(
        `cold start to ready, warm state dir (median of ${starts})`,
        median(warm),
        "ms",
        median(bot),
        "echo bot, new device",
      ),
    );
    b.notes.push(`a bare \`deno run\` of a one-line script takes ${median(bare).toFixed(0)} ms`);
  }
  Object.assign(b.raw, {
    coldStartEmptyMs: empty,
    coldStartWarmMs: warm,
    coldStartBotMs: bot,
    bareDenoRunMs: bare,
  });
  return main!;
}

/** Sequential round trips, agent and echo bot interleaved. */
async function roundTrips(b: Bench, op: Operator, agentRoom: string, botRoom: string) {
  const n = SKIP.has("latency") ? 0 : LATENCY_N;
  log(`round trips (${n} each, interleaved, after 5 warm-ups)`);
  for (let i = 0; i < 5; i++) {
    await roundTrip(op, agentRoom, `warm${i}`);
    await roundTrip(op, botRoom, `warm${i}`);
  }
  if (n === 0) return;
  const agent: number[] = [];
  const bot: number[] = [];
  for (let i = 0; i < n; i++) {
    agent.push(await roundTrip(op, agentRoom, `x${i}`));
    bot.push(await roundTrip(op, botRoom, `x${i}`));
  }
  b.rows.push(
    row(`round trip \`$ echo x\`, p50 (n=${n})`, median(agent), "ms", median(bot), "echo bot"),
    row(
      `round trip \`$ echo x\`, p95 (n=${n})`,
      percentile(agent, 95),
      "ms",
      percentile(bot, 95),
      "echo bot",
    ),
  );
  Object.assign(b.raw, { roundTripAgentMs: agent, roundTripBotMs: bot });
}

/**
 * A pipeline moving 500 MB between its stages (the monitor copies every byte
 * from one stage to the next), against the same pipeline under `script` and a shell.
 */
async function pipelineFigures(b: Bench, op: Operator, roomId: string) {
  log("a 500 MB pipeline");
  const line = "head -c 500000000 /dev/zero | wc -c";
  const t = performance.now();
  const id = await op.send(roomId, `$ timeout=300 ${line}`);
  const body = await op.waitForFinal(roomId, id, 320_000);
  const ms = performance.now() - t;
  if (!/^500000000\s*$/m.test(body)) {
    b.notes.push(`the 500 MB pipeline answered: ${body.slice(0, 200)}`);
  }
  const floor = await timeCommand("script", ["-qec", line, "/dev/null"]);
  b.rows.push(
    row(
      "500 MB through a 2-stage pipeline, send → final",
      ms,
      "ms",
      floor,
      "same under `script` + sh",
    ),
  );
}

/** Peak RSS while a command prints 1 GB, and how long that takes. */
async function bigOutput(
  b: Bench,
  agent: AgentProcess,
  op: Operator,
  roomId: string,
  idle: number,
) {
  log("1 GB of output");
  // Writing 5 to clear_refs resets VmHWM, so the peak is this command's.
  let hwmReset = true;
  try {
    await Deno.writeTextFile(`/proc/${agent.pid}/clear_refs`, "5");
  } catch {
    hwmReset = false;
    b.notes.push("could not reset VmHWM; the peak is since the agent started");
  }
  b.notes.push(`the agent's RSS 3 s after ready: ${(idle / MiB).toFixed(0)} MiB`);
  // The growth is counted from here, not from the idle figure read 3 s after ready:
  // by now the agent has synced and answered the sections before (about +15 MiB).
  const before = vm(agent.pid, "VmRSS");
  let sampled = 0;
  // Anonymous memory (heaps, buffers) apart from file pages (the binary's own code
  // as it is first run, shared with the page cache).
  const anonIdle = vm(agent.pid, "RssAnon"), fileIdle = vm(agent.pid, "RssFile");
  let anonPeak = anonIdle, filePeak = fileIdle;
  const t0 = performance.now();
  let peakAt = 0;
  const sampler = setInterval(() => {
    try {
      const now = vm(agent.pid, "VmRSS");
      if (now > sampled) [sampled, peakAt] = [now, performance.now() - t0];
      anonPeak = Math.max(anonPeak, vm(agent.pid, "RssAnon"));

      filePeak = Math.max(filePeak, vm(agent.pid, "RssFile"));
    } catch { /* exited */ }
  }, 10);
  const t = performance.now();
  const id = await op.send(roomId, "$ head -c 1000000000 /dev/urandom");
  const body = await op.waitForFinal(roomId, id, 600_000);
  const ms = performance.now() - t;
  clearInterval(sampler);
  const peak = Math.max(vm(agent.pid, "VmHWM"), sampled);
  b.notes.push(
    `1 GB: peak RSS +${((peak - before) / MiB).toFixed(1)} MiB; sampled every 10 ms, highest at ${
      (peakAt / 1000).toFixed(1)
    } s; anonymous RSS ${(anonIdle / MiB).toFixed(0)} -> ${
      (anonPeak / MiB).toFixed(0)
    } MiB, file-backed ${(fileIdle / MiB).toFixed(0)} -> ${(filePeak / MiB).toFixed(0)} MiB`,
  );
  // The floor: the same command under the same PTY helper, straight to /dev/null.
  const pty = await timeCommand("script", ["-qec", "head -c 1000000000 /dev/urandom", "/dev/null"]);
  const pipe = await timeCommand("sh", ["-c", "head -c 1000000000 /dev/urandom | cat >/dev/null"]);
  b.notes.push(`1 GB without a PTY (head | cat > /dev/null): ${(pipe / 1000).toFixed(1)} s`);
  const exit = body.split("\n").find((l) => /^exit /.test(l)) ?? "";
  b.notes.push(`the 1 GB command was answered "${exit}"`);
  b.rows.push(
    row(
      `peak RSS while a command prints 1 GB${hwmReset ? "" : " (since start)"}`,
      peak / MiB,
      "MiB",
      before / MiB,
      "agent just before",
    ),
    row("1 GB command, send to final reply", ms, "ms", pty, "same under `script`"),
  );
}

/** `get` and `put` of a FILE_MB file against a bare upload and download of it. */
async function transfers(b: Bench, agent: AgentProcess, op: Operator, roomId: string, dir: string) {
  log(`get and put of ${FILE_MB} MB`);
  const f = await fileFigures(op, roomId, agent.pid, dir, FILE_MB * 1_000_000);
  // Three times the file: a streamed transfer grows the agent no more than the first.
  const big = await fileFigures(op, roomId, agent.pid, dir, 3 * FILE_MB * 1_000_000);
  const size = `${FILE_MB} MB`, bigSize = `${3 * FILE_MB} MB`;
  const mib = (x: number) => x / MiB;
  b.rows.push(
    row(`get of ${size}: send to decrypted file`, f.getMs, "ms", f.floorMs, "bare up + down"),
    row(`put of ${size}: upload to written`, f.putMs, "ms", f.floorMs, "bare up + down"),
    row(`agent RSS growth, get of ${size}`, mib(f.getRssGrowth), "MiB", mib(f.bytes), "file"),
    row(`agent RSS growth, put of ${size}`, mib(f.putRssGrowth), "MiB", mib(f.bytes), "file"),
    row(
      `agent RSS growth, get of ${bigSize}`,
      mib(big.getRssGrowth),
      "MiB",
      mib(f.getRssGrowth),
      size,
    ),
    row(
      `agent RSS growth, put of ${bigSize}`,
      mib(big.putRssGrowth),
      "MiB",
      mib(f.putRssGrowth),
      size,
    ),
  );
  b.raw.files = { [size]: f, [bigSize]: big };
}

/** 200 commands from 2 operators at the agent and at the echo bot. */
async function manyCommands(
  b: Bench,
  ops: Operator[],
  agent: { user: Registered; stateDir: string },
  botId: string,
  responders: { agent: AgentProcess; bot: AgentProcess },
) {
  const n = THROUGHPUT_N;
  log(`throughput (${n} commands from 2 operators)`);
  const agentRoom = await room(ops, agent.user.userId);
  const botRoom = await room(ops, botId);
  for (const op of ops) op.client.scheduler = undefined;
  const before = await executeCounts(agent.stateDir);
  const tpAgent = await throughput(ops, agentRoom, n, "tp", responders.agent);
  const tpBot = await throughput(ops, botRoom, n, "tp", responders.bot);
  const after = await executeCounts(agent.stateDir);
  for (const id of tpAgent.ids) {
    assert.equal(after.get(id), 1, `${id} executed exactly once`);
    assert.equal(before.has(id), false);
  }
  const name = `${n} commands, 2 operators`;
  b.rows.push(
    row(`${name}: total time`, tpAgent.totalMs, "ms", tpBot.totalMs, "echo bot"),
    row(`${name}: commands/s`, tpAgent.perSecond, "/s", tpBot.perSecond, "echo bot"),
    row(`${name}: p50 latency`, tpAgent.p50Ms, "ms", tpBot.p50Ms, "echo bot"),
    row(`${name}: p95 latency`, tpAgent.p95Ms, "ms", tpBot.p95Ms, "echo bot"),
  );
  b.notes.push(
    `throughput: all ${n} commands got exactly one reply and one execute record; ` +
      "latency counts from the homeserver's acknowledgement of each command",
  );
  Object.assign(b.raw, { throughputAgent: tpAgent, throughputBot: tpBot });
}

/**
 * `@all $ echo` to fleets of FLEET_SIZES agents on this Synapse, each size's
 * figures next to the smallest size's (one agent: its round trip in this run).
 */
async function fleet(b: Bench) {
  const t = performance.now();
  const operatorUser = await b.synapse.register("fleetop", pw());
  const operator = await startOperator(b.synapse.url, operatorUser);
  b.cleanups.push(() => Promise.resolve(operator.stop()));
  const setup = { synapse: b.synapse, operator, operatorUser, binDir: b.binDir, log };
  const figs: FleetFigures[] = [];
  for (const n of FLEET_SIZES) {
    try {
      figs.push(await fleetSize(setup, n, FLEET_ROUNDS));
    } catch (e) {
      // A size that does not fit (memory, CPU, time) is reported, not fatal.
      b.notes.push(`fleet of ${n}: not measured: ${(e as Error).message.split("\n")[0]}`);
      log(`fleet of ${n} failed: ${(e as Error).message}`);
      break;
    }
  }
  b.raw.fleet = figs;
  if (figs.length === 0) return;
  const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
  const per = (f: FleetFigures) => ({
    p50: median(f.allMs),
    p95: percentile(f.allMs, 95),
    synapseMs: (f.synapseCpuS / f.rounds) * 1000,
    agentMs: (mean(f.agentCpuS) / f.rounds) * 1000,
    synapseShare: (f.synapseCpuS / f.wallS) * 100,
    agentShare: (mean(f.agentCpuS) / f.wallS) * 100,
  });
  const base = figs[0];
  const b0 = per(base);
  const name = `${base.size} agent${base.size === 1 ? "" : "s"}`;
  for (const f of figs) {
    const x = per(f);
    const isBase = f === base;
    const r = (metric: string, v: number, unit: string, bv: number) =>
      b.rows.push(row(`fleet of ${f.size}: ${metric}`, v, unit, isBase ? null : bv, name));
    r(`\`@all $ echo\` until all answered, p50 (n=${f.rounds})`, x.p50, "ms", b0.p50);
    r(`\`@all $ echo\` until all answered, p95 (n=${f.rounds})`, x.p95, "ms", b0.p95);
    r("Synapse CPU per round", x.synapseMs, "ms", b0.synapseMs);
    r("CPU per round per agent (mean)", x.agentMs, "ms", b0.agentMs);
    r("Synapse CPU share", x.synapseShare, "%", b0.synapseShare);
    r("CPU share per agent (mean)", x.agentShare, "%", b0.agentShare);
  }
  const pct = (cpu: number, wall: number) => `${((cpu / wall) * 100).toFixed(1)}%`;
  for (const f of figs) {
    b.notes.push(
      `fleet of ${f.size}: first answer p50 ${median(f.firstMs).toFixed(0)} ms; ` +
        `idle (${f.idleS.toFixed(0)} s, no commands): Synapse ${
          pct(f.idleSynapseCpuS, f.idleS)
        }, ` +
        `per agent ${pct(f.idleAgentCpuS, f.idleS)}; over the rounds the operator's client ` +
        `${pct(f.operatorCpuS, f.wallS)}, each agent's commands (script + echo) ` +
        `${pct(mean(f.agentChildCpuS), f.wallS)}; agent RSS ${(f.agentRss / MiB).toFixed(0)} MiB ` +
        `(mean); ${f.size} started concurrently to ready in ${(f.startMs / 1000).toFixed(1)} s`,
    );
  }
  b.notes.push(
    "fleet: each agent's sync is the light one lib/matrix/client.ts sets up: one long-polled " +
      "/sync at a time (the SDK's 30 s timeout), lazy-loaded members, a 200-event timeline page, " +
      "an initial sync of 20; it sends no receipts or typing. It still receives every event of " +
      "the room and decrypts it: per `@all` the other N-1 agents' replies and edits. Lighter " +
      "for a fleet (not changed): timeline senders limited to the allowed operators (strangers' " +
      "commands would then go unlogged), no presence, no ephemeral events",
  );
  b.notes.push(
    "fleet: CPU share = CPU seconds (utime + stime, /proc/<pid>/stat) / wall seconds of the " +
      `measured rounds, out of ${navigator.hardwareConcurrency} cores; an agent's figure ` +
      "includes its worker threads, not the commands it runs. Each size has its own agents " +
      `and room on the same Synapse; ${
        FLEET_SIZES.length > figs.length ? "not all sizes fit; " : ""
      }` +
      `fleet section: ${((performance.now() - t) / 1000).toFixed(0)} s`,
  );
}

/** `tibet-nc connect HOST -- echo x` as a whole process, next to the agent's own round trip. */
async function connectSection(b: Bench, op: Operator, roomId: string) {
  log(`tibet-nc connect -- echo x (${CONNECT_N}, interleaved with the agent's round trip)`);
  const c = await connectFigures({
    homeserver: b.synapse.url,
    op,
    opUser: b.op1User,
    roomId,
    host: "bench",
    n: CONNECT_N,
    roundTrip: (tag) => roundTrip(op, roomId, tag),
  });
  b.rows.push(
    row(
      `connect HOST -- echo x, whole process, p50 (n=${CONNECT_N})`,
      median(c.wallMs),
      "ms",
      median(c.agentMs),
      "agent round trip",
    ),
    row("  its start: main.ts --version, p50", median(c.versionMs), "ms"),
  );
  if (c.sshMs) {
    b.rows.push(
      row(
        "connect HOST -- echo x vs ssh",
        median(c.wallMs),
        "ms",
        median(c.sshMs),
        "ssh localhost",
      ),
    );
  } else b.notes.push("no sshd listens on localhost:22 here: `ssh localhost echo x` not measured");
  b.notes.push(
    `connect phases, median ms since its process started: ${
      Object.entries(c.phases).map(([k, v]) => `${k} ${v}`).join(", ")
    }`,
  );
  b.raw.connect = c;
}

/** `audit verify` against `sha256sum` of the same file. */
async function auditFigures(b: Bench) {
  log(`audit verify of ${AUDIT_RECORDS} records (writing them first)`);
  const audit = await runAuditBench({ records: AUDIT_RECORDS });
  b.rows.push(
    row(
      `audit verify, ${AUDIT_RECORDS} records (${audit.file_mb.toFixed(0)} MB)`,
      audit.verify_s,
      "s",
      audit.sha256sum_s,
      "sha256sum",
    ),
    row("audit append, fsync'd, p50", audit.append_fsync_p50_ms, "ms"),
  );
  b.raw.audit = audit;
}

async function main(): Promise<void> {
  const started = performance.now();
  const m = machine();
  log("starting Synapse");
  const synapse = await startSynapse();
  const b: Bench = {
    synapse,
    binDir: await makeBinDir([...TEST_PROGRAMS, "wc"]),
    op1User: await synapse.register("op1", pw()),
    op2User: await synapse.register("op2", pw()),
    allowed: [],
    rows: [],
    notes: [],
    procs: [],
    cleanups: [() => synapse.stop()],
    raw: {},
  };
  b.cleanups.push(() => Deno.remove(b.binDir, { recursive: true }));
  b.allowed = [b.op1User.userId, b.op2User.userId];
  try {
    const main = await coldStarts(b);

    log("starting the agent, the echo bot and two operators");
    const fileDir = await tmpDir(b, "tibet-nc-bench-files-");
    const env = {
      ...agentEnv(synapse.url, main.user, b.allowed, main.stateDir, b.binDir),
      TIBET_NC_FILE_DIRS: fileDir,
    };
    const agent = await startAgentProcess(env);
    b.procs.push(agent);
    await agent.waitFor(/^ready:/, 120_000);
    const botUser = await synapse.register("bot", pw());
    const bot = startEchoBot({ homeserver: synapse.url, ...botUser, allowedUsers: b.allowed });
    b.procs.push(bot);
    await bot.waitFor(/^ready:/, 120_000);
    await sleep(3000);
    const idle = vm(agent.pid, "VmRSS");
    b.rows.push(
      row("idle RSS after ready", idle / MiB, "MiB", vm(bot.pid, "VmRSS") / MiB, "echo bot idle"),
    );

    const op1 = await startOperator(synapse.url, b.op1User);
    const op2 = await startOperator(synapse.url, b.op2User);
    b.cleanups.push(() => Promise.resolve(op1.stop()), () => Promise.resolve(op2.stop()));
    const agentRoom = await room([op1], main.user.userId);
    const botRoom = await room([op1], botUser.userId);
    const botIdle = vm(bot.pid, "VmRSS");
    await roundTrips(b, op1, agentRoom, botRoom);
    if (!SKIP.has("latency")) {
      // Both answered the same commands: what each holds afterwards.
      b.notes.push(
        `RSS after the round trips: agent ${(idle / MiB).toFixed(0)} -> ${
          (vm(agent.pid, "VmRSS") / MiB).toFixed(0)
        } MiB, echo bot ${(botIdle / MiB).toFixed(0)} -> ${
          (vm(bot.pid, "VmRSS") / MiB).toFixed(0)
        } MiB`,
      );
    }
    if (!SKIP.has("connect")) await connectSection(b, op1, agentRoom);
    if (!SKIP.has("1gb")) await bigOutput(b, agent, op1, agentRoom, idle);
    if (!SKIP.has("pipeline")) await pipelineFigures(b, op1, agentRoom);
    if (!SKIP.has("files")) await transfers(b, agent, op1, agentRoom, fileDir);
    if (!SKIP.has("throughput")) {
      await manyCommands(b, [op1, op2], main, botUser.userId, { agent, bot });
    }

    // Stop everything before the CPU-bound audit benchmark (and the fleet's CPU figures).
    for (const p of b.procs.splice(0)) await p.kill("SIGTERM");
    if (!SKIP.has("fleet")) await fleet(b);
    for (const c of b.cleanups.splice(0).reverse()) await c().catch(() => {});
    if (!SKIP.has("audit")) await auditFigures(b);

    b.notes.push(`whole benchmark: ${((performance.now() - started) / 1000).toFixed(0)} s`);
    printTable(m, b.rows, b.notes);
    const commit = await new Deno.Command("git", {
      args: ["rev-parse", "--short", "HEAD"],
      cwd: ROOT,
      stdout: "piped",
      stderr: "null",
    }).output().then((o) => new TextDecoder().decode(o.stdout).trim()).catch(() => "");
    await Deno.mkdir(`${ROOT}bench/results`, { recursive: true });
    const result = {
      date: new Date().toISOString(),
      commit,
      machine: m,
      rows: b.rows,
      notes: b.notes,
      raw: b.raw,
    };
    await Deno.writeTextFile(
      `${ROOT}bench/results/latest.json`,
      JSON.stringify(result, null, 2) + "\n",
    );
    console.log("wrote bench/results/latest.json");
  } finally {
    for (const p of b.procs) await p.kill("SIGKILL").catch(() => {});
    for (const c of b.cleanups.reverse()) await c().catch(() => {});
  }
}

if (import.meta.main) {
  await main();
  Deno.exit(0);
}
