/**
 * The Deno permissions of the Matrix worker: the homeserver, its own entries of
 * the state dir, and reading its own code; nothing else.
 * @module
 */

import type { Config } from "../config/config.ts";
import { workerStatePaths } from "../config/state_dir.ts";

/** The worker's permissions, as data (see the module doc). */
export function workerPermissions(config: Config): Deno.PermissionOptionsObject {
  const host = new URL(config.homeserver).host;
  // Default ports are not spelled out in URL.host; Deno matches host:port exactly.
  const net = host.includes(":") ? [host] : [host, `${host}:443`, `${host}:80`];
  const state = workerStatePaths(config.stateDir);
  // The rust crypto reads its .wasm from the package dir (the embedded one in a
  // compiled binary).
  const code = new URL("../../node_modules/", import.meta.url);
  const read = [...state];
  if (code.protocol === "file:") read.push(code.pathname);
  return {
    net,
    read,
    write: state,
    run: false,
    env: false,
    ffi: false,
    sys: false,
    import: false,
  };
}
