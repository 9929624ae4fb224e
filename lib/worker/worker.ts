/**
 * Entry point of the Matrix worker: receives its configuration from the
 * monitor, starts the worker, and relays the monitor's answers. Runs with the
 * narrowed Deno permissions of `lib/monitor/permissions.ts`.
 * @module
 */

import type { ToMonitor, ToWorker } from "../monitor/protocol.ts";
import { ConfigError } from "../config/config.ts";
import { type MatrixWorker, startMatrixWorker } from "./matrix_worker.ts";
import { monitorClient } from "./monitor_client.ts";

/** The parts of the Worker global scope used here. */
interface WorkerScope {
  postMessage(m: ToMonitor, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
}

const scope = globalThis as unknown as WorkerScope;
const post = (m: ToMonitor, transfer: Transferable[] = []) => scope.postMessage(m, transfer);
const log = (msg: string) => console.error(msg);
let worker: MatrixWorker | null = null;
let receive: (m: ToWorker) => void = () => {};

scope.onmessage = (e) => {
  const m = e.data;
  if (m.type === "start") {
    const fatal = (message: string): never => {
      post({ type: "fatal", message });
      throw new Error(message);
    };
    const client = monitorClient(post, m.chain);
    receive = client.receive;
    startMatrixWorker(m.config, client.monitor, {
      log,
      fatal,
      execAs: m.execAs,
      verbose: m.verbose,
    })
      .then((w) => {
        worker = w;
        post({ type: "ready" });
      })
      .catch((err) =>
        post({
          type: "fatal",
          message: `${err instanceof ConfigError ? "configuration error" : "cannot start"}: ${
            (err as Error).message
          }`,
          config: err instanceof ConfigError,
        })
      );
  } else if (m.type === "stop") {
    (worker?.stop() ?? Promise.resolve()).finally(() => post({ type: "stopped" }));
  } else {
    receive(m);
  }
};
