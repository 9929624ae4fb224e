/**
 * The monitor: the main thread of `tibet-nc run`, and the only part that can
 * start a process (OpenSSH-style privilege separation, DESIGN.md section 2). It
 * prepares the state dir, decides the execution identity, loads the policy and
 * starts the agent in a Worker whose Deno permissions allow only the homeserver
 * (and BRAIN_API_BASE), the state dir, and reading its own code. Requests from
 * the agent are judged again here before anything runs.
 * @module
 */

import type { Config } from "../config/config.ts";
import { checkCommand } from "../airlock/policy_cli.ts";
import { loadPolicy, type Policy } from "../airlock/policy.ts";
import { childEnv } from "../exec/child_env.ts";
import { type ExecIdentity, execIdentity } from "../exec/exec_user.ts";
import { createOutputBuffer, type OutputBuffer } from "../exec/output.ts";
import { checkHelpers, runCommand, type RunHandle } from "../exec/run.ts";
import type { ToAgent, ToMonitor } from "./protocol.ts";

/** Characters of output shown in one message (Matrix events are at most 64 KiB). */
export const MESSAGE_OUTPUT_CHARS = 8000;
const OUTPUT_KEEP_BYTES = 64 * 1024;

/** The Worker permissions of the agent: nothing but what Matrix and the state dir need. */
export function agentPermissions(config: Config): Deno.PermissionOptionsObject {
  const hosts = [new URL(config.homeserver).host];
  if (config.brainApiBase) hosts.push(new URL(config.brainApiBase).host);
  // Default ports are not spelled out in URL.host; Deno matches host:port exactly.
  const withPorts = hosts.flatMap((h) => h.includes(":") ? [h] : [h, `${h}:443`, `${h}:80`]);
  // The rust crypto reads its .wasm from the package dir (the embedded one in a
  // compiled binary): the agent may read its own code, nothing else outside the state dir.
  const code = new URL("../../node_modules/", import.meta.url);
  const read = [config.stateDir];
  if (code.protocol === "file:") read.push(code.pathname);
  return {
    net: withPorts,
    read,
    write: [config.stateDir],
    run: false,
    env: false,
    ffi: false,
    sys: false,
    import: false,
  };
}

/** What the monitor tracks of a running command. */
interface Running {
  handle: RunHandle;
  out: OutputBuffer;
}

/** Judges and runs agent requests; exported for tests of the monitor's own checks. */
export function requestHandler(
  config: Config,
  policy: Policy,
  exec: ExecIdentity,
  send: (m: ToAgent) => void,
  log: (msg: string) => void,
): { handle(m: ToMonitor): Promise<void>; cancelAll(): Promise<void> } {
  const running = new Map<number, Running>();
  return {
    async handle(m) {
      switch (m.type) {
        case "check":
          send({
            type: "checked",
            id: m.id,
            checked: await checkCommand(m.text, config.binDir, policy),
          });
          return;
        case "run": {
          // Judged again here: the agent's own check is not trusted.
          const c = await checkCommand(m.text, config.binDir, policy);
          if (c.verdict !== "allow" || !c.argv || !c.path) {
            log(`monitor refused ${m.eventId}: ${c.rule}: ${c.reason}`);
            send({ type: "failed", id: m.id, rule: c.rule, reason: `monitor: ${c.reason}` });
            return;
          }
          const timeoutMs = Math.min(Math.max(m.timeoutMs, 1000), config.commandTimeoutMax * 1000);
          const out = createOutputBuffer(OUTPUT_KEEP_BYTES);
          let handle: RunHandle;
          try {
            handle = runCommand({
              argv: c.argv,
              path: c.path,
              env: childEnv({ binDir: config.binDir, home: exec.home }),
              cwd: "/",
              timeoutMs,
              maxOutputBytes: config.maxOutputBytes,
              uid: exec.uid ?? undefined,
              gid: exec.gid ?? undefined,
            }, (chunk) => out.push(chunk));
          } catch (e) {
            send({ type: "failed", id: m.id, rule: "deny.exec", reason: (e as Error).message });
            return;
          }
          running.set(m.id, { handle, out });
          try {
            const result = await handle.done;
            send({
              type: "done",
              id: m.id,
              result,
              text: out.render(MESSAGE_OUTPUT_CHARS),
              sha256: out.sha256Hex(),
            });
          } catch (e) {
            send({ type: "failed", id: m.id, rule: "deny.exec", reason: (e as Error).message });
          } finally {
            running.delete(m.id);
          }
          return;
        }
        case "render": {
          const r = running.get(m.job);
          send({ type: "rendered", id: m.id, text: r ? r.out.render(MESSAGE_OUTPUT_CHARS) : "" });
          return;
        }
        case "cancel":
          running.get(m.id)?.handle.cancel(m.reason);
          return;
      }
    },
    async cancelAll() {
      const jobs = [...running.values()];
      for (const r of jobs) r.handle.cancel("the agent is stopping");
      await Promise.allSettled(jobs.map((r) => r.handle.done));
    },
  };
}

/**
 * Runs the agent in its Worker until `stopSignal` resolves or the agent fails;
 * returns the process exit code.
 */
export async function runMonitor(
  config: Config,
  stopSignal: Promise<string>,
  log: (msg: string) => void,
  verbose = false,
): Promise<number> {
  Deno.mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  checkHelpers();
  const exec = await execIdentity(config.execUser, config.execAsSelf);
  if (exec.warning) log(`warning: ${exec.warning}`);
  const policy = await loadPolicy(config.policyFile ?? undefined);

  const worker = new Worker(new URL("../agent/worker.ts", import.meta.url).href, {
    type: "module",
    name: "agent",
    deno: { permissions: agentPermissions(config) },
  } as WorkerOptions);
  const send = (m: ToAgent) => worker.postMessage(m);
  const requests = requestHandler(config, policy, exec, send, log);

  let settle: (code: number) => void = () => {};
  const finished = new Promise<number>((resolve) => settle = resolve);
  worker.onmessage = (e: MessageEvent<ToMonitor>) => {
    const m = e.data;
    if (m.type === "fatal") {
      log(`tibet-nc: ${m.message}`);
      settle(1);
    } else if (m.type === "stopped") settle(0);
    else if (m.type !== "ready") {
      requests.handle(m).catch((err) => log(`monitor error: ${(err as Error).stack ?? err}`));
    }
  };
  worker.onerror = (e) => {
    e.preventDefault();
    log(`tibet-nc: the agent failed: ${e.message}`);
    settle(1);
  };
  const execAs = exec.uid === null ? exec.name : `${exec.name} (uid ${exec.uid})`;
  send({ type: "start", config, execAs, verbose });

  const code = await Promise.race([
    finished,
    stopSignal.then(async (sig) => {
      log(`${sig}: stopping`);
      await requests.cancelAll();
      send({ type: "stop" });
      const timeout = new Promise<number>((r) => setTimeout(() => r(0), 10_000));
      return await Promise.race([finished, timeout]);
    }),
  ]);
  await requests.cancelAll();
  worker.terminate();
  return code;
}
