/**
 * Everything before the first command: the state dir, the device (logged in
 * and cross-signed), the first sync, the room, the pinned agent. Both modes
 * start here.
 * @module
 */

import { SyncState } from "matrix-js-sdk";
import { agentKeys, checkAgent } from "./agent.ts";
import { type ConnectClient, openClient, resolveRoom, startSync } from "./client.ts";
import { type Conversation, conversation } from "./conversation.ts";
import { findPin, type Pin, readPins } from "./known_hosts.ts";
import { ensureCrossSigned, ensureSession } from "./login.ts";
import { ConnectError, type ConnectOptions, EXIT } from "./options.ts";
import { verifyByEmoji } from "./sas.ts";
import { lockStateDir, prepareStateDir, statePaths } from "./state.ts";
import { mark } from "./timing.ts";
import type { LineReader } from "./stdin_lines.ts";

/** A connected session. */
export interface Session {
  cc: ConnectClient;
  roomId: string;
  host: string;
  pin: Pin;
  talk: Conversation;
  /** The prompt's history file. */
  historyPath: string;
  /** Null while the homeserver is reachable, else since when it is not (ms since epoch). */
  lostSince(): number | null;
  close(): void;
}

/**
 * The room HOST was pinned in, when `--room` is not given: connect remembers
 * where a host is, as ssh remembers its key. Null when it was never pinned.
 */
function pinnedRoom(pins: Pin[], host: string): string | null {
  const rooms = [
    ...new Set(
      pins.filter((p) => p.host.toLowerCase() === host.toLowerCase()).map((p) => p.room),
    ),
  ];
  if (rooms.length > 1) {
    throw new ConnectError(
      `${host} is pinned in ${rooms.length} rooms (${rooms.join(", ")}): pass --room`,
      EXIT.usage,
    );
  }
  return rooms[0] ?? null;
}

/** Opens the session for `opts` (HOST required). */
export async function openSession(opts: ConnectOptions, stdin: LineReader): Promise<Session> {
  if (opts.host === null) {
    throw new ConnectError(
      "which host? give HOST (the agent's host name) or set TIBET_NC_CONNECT_HOST",
      EXIT.usage,
    );
  }
  mark("loaded");
  prepareStateDir(opts.stateDir);
  const unlock = lockStateDir(opts.stateDir);
  let cc: ConnectClient | null = null;
  try {
    const saved = await ensureSession(opts, stdin);
    cc = await openClient(saved, opts.stateDir, opts.verbose);
    mark("crypto");
    // The pinned agent's keys are asked for while the first sync runs: the pin
    // check then costs no round trip of its own.
    const knownHosts = statePaths(opts.stateDir).knownHosts;
    const pins = readPins(knownHosts);
    const guess = opts.room?.startsWith("!") ? opts.room : pinnedRoom(pins, opts.host);
    const known = guess ? findPin(pins, guess, opts.host) : undefined;
    const early = known
      ? { agent: known.agent, keys: agentKeys(cc.client, known.agent) }
      : undefined;
    early?.keys.catch(() => {}); // awaited in checkAgent

    let lost: number | null = null;
    await startSync(cc.client, opts.timeoutS * 1000, (state, error) => {
      if (state === SyncState.Error || state === SyncState.Reconnecting) {
        if (lost === null) {
          lost = Date.now();
          console.error(
            `tibet-nc connect: lost ${saved.homeserver} (${
              error?.message ?? state
            }); reconnecting ...`,
          );
        }
      } else if (state === SyncState.Syncing && lost !== null) {
        lost = null;
        console.error(`tibet-nc connect: ${saved.homeserver} is back`);
      }
    });
    mark("synced");
    await ensureCrossSigned(cc, opts, stdin, verifyByEmoji);
    mark("trusted");
    const roomId = await resolveRoom(cc.client, opts.room ?? guess);
    mark("room");
    // Members and room keys are shared now, while the pin is checked, not at the first send.
    cc.client.getCrypto()!.prepareToEncrypt(cc.client.getRoom(roomId)!);
    const talk = conversation(cc.client, roomId);
    talk.onImpostor((ev) =>
      console.error(
        `tibet-nc connect: ignored a message claiming to answer, from ${ev.getSender()} ` +
          `(not the pinned agent device)`,
      )
    );
    const { pin } = await checkAgent(
      cc.client,
      talk,
      roomId,
      opts.host,
      { path: knownHosts, pins },
      opts.acceptNewIdentity,
      opts.timeoutS * 1000,
      early,
    );
    mark("agent checked");
    const client = cc;
    return {
      cc: client,
      roomId,
      host: opts.host,
      pin,
      talk,
      historyPath: statePaths(opts.stateDir).history,
      lostSince: () => lost,
      close: () => {
        client.close();
        unlock();
      },
    };
  } catch (e) {
    cc?.close();
    unlock();
    throw e;
  }
}
