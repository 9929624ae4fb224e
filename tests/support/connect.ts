/**
 * `tibet-nc connect`'s first-run arguments for a world's operator, shared by
 * the tests, the demo and the bench.
 * @module
 */

import type { World } from "./fixture.ts";

/** The flags of a first connect: the homeserver, the operator, the room, the state dir. */
export function firstConnectArgs(w: World, room: string, stateDir: string): string[] {
  return [
    "--homeserver",
    w.synapse.url,
    "--user",
    w.operatorUser.userId,
    "--room",
    room,
    "--state-dir",
    stateDir,
  ];
}
