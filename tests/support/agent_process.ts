/**
 * Runs the agent as its own process, exactly as `deno task start` does (the
 * permission flags are read from deno.json), and watches its log.
 * @module
 */

import { shuttingDown } from "./cleanup.ts";
import { stagedForOthers } from "./staging.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** A running agent process. */
export interface AgentProcess {
  /** Process id of the agent. */
  pid: number;
  /** Every log line so far. */
  lines: string[];
  /** Waits for a log line matching `re`. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  /** Sends a signal and waits for exit; returns the exit code. */
  kill(signal?: Deno.Signal): Promise<number>;
  status: Promise<Deno.CommandStatus>;
}

/** The `deno run` arguments of the `start` task, with `deno` replaced by this Deno. */
export async function startTaskArgs(): Promise<string[]> {
  const cfg = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const words = String(cfg.tasks.start).split(/\s+/);
  if (words[0] !== "deno") throw new Error("tasks.start must begin with `deno`");
  return words.slice(1);
}

/** Starts `main.ts run` with `env` as its whole environment (plus PATH and HOME). */
export async function startAgentProcess(
  env: Record<string, string>,
  extraArgs: string[] = [],
  as: { uid?: number; gid?: number } = {},
): Promise<AgentProcess> {
  if (shuttingDown()) throw new Error("not starting the agent: shutting down");
  const args = [...await startTaskArgs(), ...extraArgs];
  // Another user may not reach this checkout (under /root): give it a staged copy.
  const other = as.uid !== undefined && as.uid !== Deno.uid();
  const where = other
    ? await stagedForOthers()
    : { deno: Deno.execPath(), root: ROOT, denoDir: Deno.env.get("DENO_DIR") ?? "" };
  const child = new Deno.Command(where.deno, {
    args,
    cwd: where.root,
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: other ? where.denoDir : Deno.env.get("HOME") ?? "/tmp",
      DENO_DIR: where.denoDir,
      NO_COLOR: "1",
      ...env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    uid: as.uid,
    gid: as.gid,
  }).spawn();
  return watchProcess(child, "agent", Boolean(Deno.env.get("TIBET_NC_TEST_VERBOSE")));
}

/**
 * Collects the log lines of `child` (stdout and stderr) and gives the handle
 * tests use: `waitFor` a line, `kill`, the exit status. `label` names it in errors.
 */
export function watchProcess(child: Deno.ChildProcess, label: string, echo = false): AgentProcess {
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    let buf = "";
    const dec = new TextDecoder();
    for await (const chunk of stream) {
      buf += dec.decode(chunk, { stream: true });
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
        if (echo) console.error(`[${label}] ${lines.at(-1)}`);
        for (const w of waiters) w();
      }
    }
    if (buf) lines.push(buf);
    for (const w of waiters) w();
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let exited = false;
  const status = child.status.then(async (s) => {
    exited = true;
    await pumps;
    for (const w of waiters) w();
    return s;
  });
  return {
    pid: child.pid,
    lines,
    status,
    waitFor(re, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        let from = 0;
        const check = () => {
          for (; from < lines.length; from++) {
            if (re.test(lines[from])) {
              clearTimeout(timer);
              waiters.delete(check);
              return resolve(lines[from]);
            }
          }
          if (exited) {
            clearTimeout(timer);
            waiters.delete(check);
            reject(new Error(`${label} exited before logging ${re}:\n${lines.join("\n")}`));
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`${label} did not log ${re} in ${timeoutMs} ms:\n${lines.join("\n")}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async kill(signal = "SIGTERM") {
      if (!exited) {
        try {
          child.kill(signal);
        } catch { /* gone */ }
      }
      return (await status).code;
    },
  };
}
