/**
 * The monitor: the main thread of `tibet-nc run` (OpenSSH-style privilege
 * separation, see ARCHITECTURE.md). It prepares the state dir, decides the exec
 * user, loads the policy, holds the signing key and the audit log, and is the
 * only part that can start a process. It starts the Matrix worker with the
 * permissions of `permissions.ts` and answers its requests (`requests.ts`).
 * @module
 */

import { type Config, ConfigError, EXIT_CONFIG, weakenedGuarantees } from "../config/config.ts";
import { loadPolicy } from "../policy/policy_file.ts";
import { emitting, openBrainQueue } from "../audit/brain.ts";
import { AUDIT_LOG_FILE, openAuditLog } from "../audit/log.ts";
import { loadOrCreateSigningKey, SIGNING_KEY_FILE } from "../audit/signing_key.ts";
import { execIdentity } from "../exec/exec_user.ts";
import { checkHelpers } from "../exec/pipeline.ts";
import { spawnWorker } from "./spawn_worker.ts";
import type { ToMonitor, ToWorker } from "./protocol.ts";
import { requestHandler } from "./requests.ts";

/** How to start the monitor; tests may put their own module in the worker's place. */
export interface MonitorOptions {
  verbose?: boolean;
  /**
   * The module run as the Matrix worker, with the worker's permissions.
   * @default lib/worker/worker.ts
   */
  workerUrl?: string;
  /**
   * A worker already started with {@linkcode spawnWorker} (`tibet-nc run` starts
   * it before loading this module); it is stopped when the monitor returns.
   */
  worker?: Worker;
}

/**
 * Runs the agent until `stopSignal` resolves or the worker fails; returns the
 * process exit code ({@linkcode EXIT_CONFIG} when a setting is wrong). Throws a
 * ConfigError for a bad exec user or policy file.
 */
export async function runMonitor(
  config: Config,
  stopSignal: Promise<string>,
  log: (msg: string) => void,
  opts: MonitorOptions = {},
): Promise<number> {
  // Started first: the worker loads the Matrix SDK and its crypto on its own
  // thread while the monitor prepares below; it waits for `start` to begin.
  const worker = opts.worker ?? spawnWorker(config, opts.workerUrl);
  try {
    Deno.mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
    checkHelpers();
    return await monitorWith(worker, config, stopSignal, log, opts);
  } finally {
    worker.terminate(); // also when a setting is wrong and nothing was started
  }
}

async function monitorWith(
  worker: Worker,
  config: Config,
  stopSignal: Promise<string>,
  log: (msg: string) => void,
  opts: MonitorOptions,
): Promise<number> {
  const exec = await execIdentity(config.execUser, config.execAsSelf);
  const approvedExec = config.approvedExecUser === null
    ? undefined
    : await execIdentity(config.approvedExecUser, false, "TIBET_NC_APPROVED_EXEC_USER");
  for (const w of weakenedGuarantees(config)) log(`warning: ${w.variable} (weaker): ${w.givesUp}`);
  const loaded = await loadPolicy(config.policyFile ?? undefined).catch((e) => {
    throw new ConfigError("TIBET_NC_POLICY_FILE", (e as Error).message);
  });
  // No command may write into the agent's own state (records, keys, crypto store).
  const policy = { ...loaded, protect: [config.stateDir] };
  const key = await loadOrCreateSigningKey(`${config.stateDir}/${SIGNING_KEY_FILE}`);
  const chain = await openAuditLog(`${config.stateDir}/${AUDIT_LOG_FILE}`, key);
  const brain = config.brainApiBase
    ? openBrainQueue(
      config.brainApiBase,
      `${config.stateDir}/brain-queue.jsonl`,
      config.hostname,
      log,
    )
    : null;
  const audit = brain ? emitting(chain, brain) : chain;
  // Loaded only when recording is on: age-encryption and its ciphers would otherwise
  // sit in the monitor's heap of every agent (issue 19).
  const recording = config.recordPubkey ? await import("../recording/recorder.ts") : null;
  const recorder = recording && config.recordPubkey
    ? await recording.openRecorder({
      dir: `${config.stateDir}/${recording.RECORDINGS_DIR}`,
      pubkey: config.recordPubkey,
      keepDays: config.recordKeepDays,
      maxBytes: config.recordMaxBytes,
      log,
    }).catch((e) => {
      throw new ConfigError("TIBET_NC_RECORD_PUBKEY", (e as Error).message);
    })
    : undefined;

  const send = (m: ToWorker, transfer: Transferable[] = []) => worker.postMessage(m, transfer);
  const realFileDirs = config.fileDirs.map((d) => {
    try {
      return Deno.realPathSync(d);
    } catch {
      return d; // not visible to the agent's user: judged as given
    }
  });
  const requests = requestHandler(
    { config, policy, exec, audit, log, realFileDirs, recorder, approvedExec },
    send,
  );

  let settle: (code: number) => void = () => {};
  const finished = new Promise<number>((resolve) => settle = resolve);
  worker.onmessage = (e: MessageEvent<ToMonitor>) => {
    const m = e.data;
    if (m?.type === "fatal") {
      log(`tibet-nc: ${m.message}`);
      settle(m.config ? EXIT_CONFIG : 1);
    } else if (m?.type === "stopped") settle(0);
    else if (m?.type !== "ready") {
      requests.handle(m).catch((err) => log(`monitor error: ${(err as Error).stack ?? err}`));
    }
  };
  worker.onerror = (e) => {
    e.preventDefault();
    log(`tibet-nc: the Matrix worker failed: ${e.message}`);
    settle(1);
  };
  const execAs = exec.uid === null ? exec.name : `${exec.name} (uid ${exec.uid})`;
  send({
    type: "start",
    config,
    execAs,
    verbose: opts.verbose ?? false,
    chain: { head: audit.head(), pubkeyHex: audit.pubkeyHex },
  });

  const code = await Promise.race([
    finished,
    stopSignal.then(async (sig) => {
      log(`${sig}: stopping`);
      await requests.cancelAll("the agent is stopping");
      send({ type: "stop" });
      const timeout = new Promise<number>((r) => setTimeout(() => r(0), 10_000));
      return await Promise.race([finished, timeout]);
    }),
  ]);
  await requests.cancelAll("the agent is stopping");
  worker.terminate();
  await audit.close();
  brain?.close();
  return code;
}
