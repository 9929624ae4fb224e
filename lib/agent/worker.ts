/**
 * Entry point of the agent Worker: receives its configuration from the monitor,
 * starts the agent, and relays execution requests. Runs with narrowed Deno
 * permissions (see `agentPermissions` in lib/monitor/monitor.ts).
 * @module
 */

import type { ToAgent, ToMonitor } from "../monitor/protocol.ts";
import { type Agent, startAgent } from "./agent.ts";
import { monitorExecutor } from "./executor.ts";

/** The parts of the Worker global scope used here. */
interface WorkerScope {
  postMessage(m: ToMonitor): void;
  onmessage: ((e: MessageEvent<ToAgent>) => void) | null;
}

const scope = globalThis as unknown as WorkerScope;
const post = (m: ToMonitor) => scope.postMessage(m);
const { executor, receive } = monitorExecutor(post);
const log = (msg: string) => console.error(msg);
let agent: Agent | null = null;

scope.onmessage = (e) => {
  const m = e.data;
  if (m.type === "start") {
    const fatal = (message: string): never => {
      post({ type: "fatal", message });
      throw new Error(message);
    };
    startAgent(m.config, executor, { log, fatal, execAs: m.execAs, verbose: m.verbose })
      .then((a) => {
        agent = a;
        post({ type: "ready" });
      })
      .catch((err) => post({ type: "fatal", message: `cannot start: ${(err as Error).message}` }));
  } else if (m.type === "stop") {
    (agent?.stop() ?? Promise.resolve()).finally(() => post({ type: "stopped" }));
  } else {
    receive(m);
  }
};
