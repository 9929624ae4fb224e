/**
 * Starting the Matrix worker: a Deno Worker with the permissions of
 * `permissions.ts`. Kept apart from the monitor so `tibet-nc run` can start it
 * before loading the monitor's own modules: the two load on separate threads.
 * @module
 */

import type { Config } from "../config/config.ts";
import { workerPermissions } from "./permissions.ts";

/** The worker's module. */
export const WORKER_URL = new URL("../worker/worker.ts", import.meta.url).href;

/**
 * Starts the worker from `url` with the worker's permissions for `config`; it
 * loads its modules and waits for the monitor's `start` message.
 */
export function spawnWorker(config: Config, url: string = WORKER_URL): Worker {
  return new Worker(url, {
    type: "module",
    name: "matrix worker",
    deno: { permissions: workerPermissions(config) },
  } as WorkerOptions);
}
