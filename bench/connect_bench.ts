/**
 * `tibet-nc connect HOST -- echo x` as a whole process with warm state (the
 * device logged in, cross-signed and the agent pinned by a first run), next to
 * the agent's own round trip measured in the same run, interleaved: what the
 * client adds is its start, opening its keys, the first sync and checking the
 * pin. `TIBET_NC_CONNECT_TIMING=1` makes each run say where its time went.
 * @module
 */

import assert from "node:assert/strict";
import type { Operator } from "../tests/support/operator.ts";
import type { Registered } from "../tests/support/synapse.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** What the section measured, in ms. */
export interface ConnectFigures {
  wallMs: number[];
  agentMs: number[];
  /** `deno run` of `main.ts --version`: the runtime's start and the CLI's own modules. */
  versionMs: number[];
  /** Each phase's median end, ms since the process started (`lib/connect/timing.ts`). */
  phases: Record<string, number>;
  /** `ssh localhost echo x`, or null when no sshd runs here. */
  sshMs: number[] | null;
}

async function run(args: string[], stdin = "", env: Record<string, string> = {}) {
  const t = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--unstable-worker-options", MAIN, ...args],
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(stdin));
  await w.close();
  const out = await child.output();
  const ms = performance.now() - t;
  const dec = new TextDecoder();
  return { ms, code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** True when something answers ssh on localhost:22 (this bench starts no sshd). */
async function sshdListening(): Promise<boolean> {
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port: 22 });
    c.close();
    return true;
  } catch {
    return false;
  }
}

/** Runs the section; `roundTrip` is one agent round trip of the bench's own operator. */
export async function connectFigures(opts: {
  homeserver: string;
  op: Operator;
  opUser: Registered;
  roomId: string;
  host: string;
  n: number;
  roundTrip: (tag: string) => Promise<number>;
}): Promise<ConnectFigures> {
  const { op, opUser, host, n } = opts;
  const recoveryKey = await op.setUpRecovery();
  const state = await Deno.makeTempDir({ prefix: "tibet-nc-bench-connect-" });
  try {
    const first = await run([
      "connect",
      "--homeserver",
      opts.homeserver,
      "--user",
      opUser.userId,
      "--room",
      opts.roomId,
      "--state-dir",
      state,
      "--password-stdin",
      "--recovery-key-stdin",
      host,
      "--",
      "echo",
      "warm",
    ], `${opUser.password}\n${recoveryKey}\n`);
    assert.equal(first.code, 0, first.stderr);
    const wallMs: number[] = [], agentMs: number[] = [], versionMs: number[] = [];
    const phaseRuns: Record<string, number[]> = {};
    for (let i = 0; i < n; i++) {
      const r = await run(["connect", "--state-dir", state, host, "--", "echo", `c${i}`], "", {
        TIBET_NC_CONNECT_TIMING: "1",
      });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `c${i}\n`);
      wallMs.push(r.ms);
      const line = /^timing: (.*) \(ms\)$/m.exec(r.stderr)?.[1] ?? "";
      for (const part of line.split(", ")) {
        const m = /^(.*) (\d+)$/.exec(part);
        if (m) (phaseRuns[m[1]] ??= []).push(Number(m[2]));
      }
      agentMs.push(await opts.roundTrip(`a${i}`));
      versionMs.push((await run(["--version"])).ms);
    }
    let sshMs: number[] | null = null;
    if (await sshdListening()) {
      sshMs = [];
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        const out = await new Deno.Command("ssh", {
          args: ["-o", "BatchMode=yes", "localhost", "echo", "x"],
          stdout: "null",
          stderr: "null",
        }).output();
        if (!out.success) {
          sshMs = null;
          break;
        }
        sshMs.push(performance.now() - t);
      }
    }
    const phases = Object.fromEntries(
      Object.entries(phaseRuns).map(([k, v]) => [k, median(v)]),
    );
    return { wallMs, agentMs, versionMs, phases, sshMs };
  } finally {
    await Deno.remove(state, { recursive: true }).catch(() => {});
  }
}
