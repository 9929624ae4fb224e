/**
 * One Synapse, one operator and several agent processes in one room: the
 * setting of the fleet tests. Each agent has its own account, state dir, bin
 * dir and host name, and a `canary` program that appends its argument to
 * `<markerDir>/<host>`, so a test sees exactly where a command ran.
 * @module
 */

import { type Registered, startSynapse, type Synapse } from "./synapse.ts";
import { type Operator, startOperator } from "./operator.ts";
import { cleanupStack } from "./cleanup.ts";
import { type AgentProcess, startAgentProcess } from "./agent_process.ts";
import { makeBinDir } from "./fixture.ts";

/** One agent of the fleet as the test describes it. */
export interface HostSpec {
  hostname: string;
  /** `TIBET_NC_TAGS`. */
  tags?: string;
  /** `TIBET_NC_FLEET_HINT=yes`. */
  hint?: boolean;
}

/** A started agent of the fleet. */
export interface FleetAgent {
  spec: HostSpec;
  user: Registered;
  agent: AgentProcess;
  stateDir: string;
}

/** Everything the fleet tests drive. */
export interface Fleet {
  synapse: Synapse;
  operator: Operator;
  operatorUser: Registered;
  agents: FleetAgent[];
  /** The room the operator made and every agent joined. */
  room: string;
  /** Where the canaries leave `<host>` files, one line per run (the canary's argument). */
  markerDir: string;
  close(): Promise<void>;
}

/**
 * Registers an agent account on `synapse` and starts the agent of `spec`, with
 * its canary, allowing commands from `operatorId`; resolves once it is ready.
 * What to undo afterwards is pushed onto `cleanups`.
 */
export async function startFleetAgent(
  synapse: Synapse,
  spec: HostSpec,
  operatorId: string,
  markerDir: string,
  cleanups: (() => Promise<unknown>)[],
): Promise<FleetAgent> {
  const user = await synapse.register(`agent-${spec.hostname.toLowerCase()}`, crypto.randomUUID());
  const stateDir = await Deno.makeTempDir({ prefix: `tibet-nc-state-${spec.hostname}-` });
  const binDir = await makeBinDir();
  cleanups.push(
    () => Deno.remove(stateDir, { recursive: true }),
    () => Deno.remove(binDir, { recursive: true }),
  );
  // Commands run with a clean environment: the marker path is baked in.
  await Deno.writeTextFile(
    `${binDir}/canary`,
    `#!/bin/sh\necho "$1" >> '${markerDir}/${spec.hostname}'\necho canary ran on ${spec.hostname}\n`,
    { mode: 0o755 },
  );
  const agent = await startAgentProcess({
    MATRIX_HOMESERVER: synapse.url,
    TIBET_NC_USER_ID: user.userId,
    TIBET_NC_ACCESS_TOKEN: user.accessToken,
    TIBET_NC_ALLOWED_USERS: operatorId,
    TIBET_NC_STATE_DIR: stateDir,
    TIBET_NC_BIN_DIR: binDir,
    TIBET_NC_EXEC_AS_SELF: "yes",
    TIBET_NC_HOSTNAME: spec.hostname,
    TIBET_NC_FLEET: "yes",
    TIBET_NC_FLEET_HINT: spec.hint ? "yes" : "no",
    TIBET_NC_TAGS: spec.tags ?? "",
  });
  cleanups.push(() => agent.kill("SIGKILL"));
  await agent.waitFor(/^ready:/, 180_000);
  return { spec, user, agent, stateDir };
}

/**
 * Starts the fleet: agents concurrently (each start costs a CPU-second or so),
 * then the operator, who makes an encrypted room and invites them all.
 */
export async function startFleet(hosts: HostSpec[]): Promise<Fleet> {
  // A signal while starting or running stops all of it too (cleanup.ts).
  const { cleanups, close } = cleanupStack();
  try {
    const synapse = await startSynapse();
    cleanups.push(() => synapse.stop());
    const operatorUser = await synapse.register("operator", crypto.randomUUID());
    const markerDir = await Deno.makeTempDir({ prefix: "tibet-nc-fleet-markers-" });
    cleanups.push(() => Deno.remove(markerDir, { recursive: true }));
    const agents = await Promise.all(
      hosts.map((spec) => startFleetAgent(synapse, spec, operatorUser.userId, markerDir, cleanups)),
    );
    const operator = await startOperator(synapse.url, operatorUser);
    cleanups.push(() => Promise.resolve(operator.stop()));
    const room = await operator.createRoom(agents.map((a) => a.user.userId));
    for (const a of agents) await operator.waitForJoin(room, a.user.userId, 120_000);
    return { synapse, operator, operatorUser, agents, room, markerDir, close };
  } catch (e) {
    await close();
    throw e;
  }
}
