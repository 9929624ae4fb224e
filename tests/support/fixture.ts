/**
 * One Synapse, one operator and one agent process wired together: the setting of
 * most integration tests.
 * @module
 */

import { type Registered, startSynapse, type Synapse } from "./synapse.ts";
import { type Operator, startOperator } from "./operator.ts";
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

/** Starts everything; `extraEnv` adds or overrides agent variables. */
export async function startWorld(
  extraEnv: Record<string, string> = {},
  programs: string[] = TEST_PROGRAMS,
  prepareBinDir?: (binDir: string) => Promise<void>,
): Promise<World> {
  const synapse = await startSynapse();
  const cleanups: (() => Promise<unknown>)[] = [() => synapse.stop()];
  const close = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  };
  try {
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
    let agent = await startAgentProcess(env);
    cleanups.push(() => agent.kill("SIGKILL"));
    await agent.waitFor(/^ready:/);
    const operator = await startOperator(synapse.url, operatorUser);
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
