/**
 * One Synapse, one operator and one agent process wired together: the setting of
 * most integration tests.
 * @module
 */

import { type Registered, startSynapse, type Synapse, SYNAPSE_VERSION } from "./synapse.ts";
import { type Operator, type SdkLog, startOperator } from "./operator.ts";
import { cleanupStack } from "./cleanup.ts";
import { type AgentProcess, startAgentProcess } from "./agent_process.ts";

/** Programs linked into the test bin dir when present on this machine. */
export const TEST_PROGRAMS = [
  "echo",
  "uptime",
  "date",
  "whoami",
  "hostname",
  "uname",
  "sleep",
  "tty",
  "env",
  "cat",
  "ls",
  "df",
  "free",
  "id",
  "true",
  "false",
  "printf",
  "printenv",
  "head",
  "yes",
  "seq",
];

/** Makes a bin dir of symlinks to the system's programs. */
export async function makeBinDir(programs: string[] = TEST_PROGRAMS): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "tibet-nc-bin-" });
  for (const p of programs) {
    for (const base of ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]) {
      try {
        await Deno.stat(`${base}/${p}`);
        await Deno.symlink(`${base}/${p}`, `${dir}/${p}`);
        break;
      } catch { /* try the next */ }
    }
  }
  return dir;
}

/** A Synapse with an operator, an agent account, and an agent process. */
export interface World {
  synapse: Synapse;
  operator: Operator;
  operatorUser: Registered;
  agentUser: Registered;
  agent: AgentProcess;
  env: Record<string, string>;
  stateDir: string;
  binDir: string;
  /**
   * Restarts the agent process with the same environment: `whileDown` runs
   * between the stop and the start, `whileStarting` after the start and before
   * the agent says it is ready.
   */
  restartAgent(
    signal?: Deno.Signal,
    whileDown?: () => Promise<void>,
    whileStarting?: (agent: AgentProcess) => Promise<void>,
  ): Promise<AgentProcess>;
  close(): Promise<void>;
}

/** How {@linkcode startWorld} reports. */
export interface WorldOptions {
  /** Hears each stage of the start, for a person waiting at a terminal. */
  progress?: (msg: string) => void;
  /**
   * What the operator client's SDK may print.
   * @default "warnings"
   */
  sdkLog?: SdkLog;
}

/**
 * Starts everything; `extraEnv` adds or overrides agent variables, `progress`
 * hears each stage. Everything started is stopped and removed by `close()`, or
 * on SIGINT/SIGTERM/SIGHUP, also while it is still starting.
 */
export async function startWorld(
  extraEnv: Record<string, string> = {},
  programs: string[] = TEST_PROGRAMS,
  prepareBinDir?: (binDir: string) => Promise<void>,
  opts: WorldOptions = {},
): Promise<World> {
  const progress = opts.progress ?? (() => {});
  // A signal while starting or running stops all of it too (cleanup.ts).
  const { cleanups, close } = cleanupStack();
  try {
    const synapse = await startSynapse();
    cleanups.push(() => synapse.stop());
    progress(`Synapse ${SYNAPSE_VERSION} answers at ${synapse.url}`);
    const operatorUser = await synapse.register("operator", crypto.randomUUID());
    const agentUser = await synapse.register("agent", crypto.randomUUID());
    const stateDir = await Deno.makeTempDir({ prefix: "tibet-nc-state-" });
    const binDir = await makeBinDir(programs);
    await prepareBinDir?.(binDir);
    cleanups.push(
      () => Deno.remove(stateDir, { recursive: true }),
      () => Deno.remove(binDir, { recursive: true }),
    );
    const env: Record<string, string> = {
      MATRIX_HOMESERVER: synapse.url,
      TIBET_NC_USER_ID: agentUser.userId,
      TIBET_NC_ACCESS_TOKEN: agentUser.accessToken,
      TIBET_NC_ALLOWED_USERS: operatorUser.userId,
      TIBET_NC_STATE_DIR: stateDir,
      TIBET_NC_BIN_DIR: binDir,
      TIBET_NC_EXEC_AS_SELF: "yes",
      TIBET_NC_HOSTNAME: "testhost",
      ...extraEnv,
    };
    progress("starting the agent (main.ts run) ...");
    let agent = await startAgentProcess(env);
    cleanups.push(() => agent.kill("SIGKILL"));
    await agent.waitFor(/^ready:/);
    progress("the agent is ready; signing in the operator ...");
    const operator = await startOperator(synapse.url, operatorUser, true, opts.sdkLog);
    cleanups.push(() => Promise.resolve(operator.stop()));
    const world: World = {
      synapse,
      operator,
      operatorUser,
      agentUser,
      get agent() {
        return agent;
      },
      env,
      stateDir,
      binDir,
      async restartAgent(signal: Deno.Signal = "SIGKILL", whileDown, whileStarting) {
        await agent.kill(signal);
        await whileDown?.();
        agent = await startAgentProcess(env);
        await whileStarting?.(agent);
        await agent.waitFor(/^ready:/);
        return agent;
      },
      close,
    };
    return world;
  } catch (e) {
    await close();
    throw e;
  }
}
