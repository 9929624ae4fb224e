/**
 * Every message the agent sends to a room goes through here, so that one can be
 * sent in a Megolm session of its own: the refusal an unverified device must be
 * able to read. Sharing the room's current session with that device would let it
 * read every later reply in that session; instead the session is discarded
 * before and after that one message, and no other message is encrypted while
 * the device isolation mode is widened for it.
 * @module
 */

import type { MatrixClient } from "matrix-js-sdk";
import {
  AllDevicesIsolationMode,
  type DeviceIsolationMode,
} from "matrix-js-sdk/lib/crypto-api/index.js";

type Send = () => Promise<{ event_id: string }>;

/** Sends room messages; see the module doc. */
export interface RoomSender {
  /** Runs `send` (which encrypts under the agent's usual isolation mode); many at once. */
  send(send: Send): Promise<{ event_id: string }>;
  /**
   * Runs `send` alone, in a fresh Megolm session for `roomId` that every device
   * in the room receives, unverified ones included; the sessions before and
   * after it are not shared with those devices.
   */
  sendToEveryDevice(roomId: string, send: Send): Promise<{ event_id: string }>;
}

/** A sender for `client`, whose isolation mode outside `sendToEveryDevice` is `usual`. */
export function roomSender(client: MatrixClient, usual: DeviceIsolationMode): RoomSender {
  const crypto = client.getCrypto()!;
  // A shared/exclusive lock: ordinary sends run together, the widened one alone.
  let gate: Promise<void> = Promise.resolve();
  const inFlight = new Set<Promise<unknown>>();
  // Set if a widened session could not be discarded: then nothing more is sent.
  let broken: Error | null = null;

  return {
    async send(send) {
      await gate;
      if (broken) throw broken;
      const p = send();
      inFlight.add(p);
      try {
        return await p;
      } finally {
        inFlight.delete(p);
      }
    },
    async sendToEveryDevice(roomId, send) {
      const before = gate;
      let release!: () => void;
      gate = new Promise((r) => release = r);
      try {
        await before;
        if (broken) throw broken;
        await Promise.allSettled([...inFlight]);
        await crypto.forceDiscardSession(roomId);
        crypto.setDeviceIsolationMode(new AllDevicesIsolationMode(false));
        try {
          return await send();
        } finally {
          crypto.setDeviceIsolationMode(usual);
          await crypto.forceDiscardSession(roomId).catch((e) => {
            broken = new Error(
              `the Megolm session shared with unverified devices in ${roomId} could not be discarded (${
                (e as Error).message
              }); sending nothing more, restart the agent`,
            );
            throw broken;
          });
        }
      } finally {
        release();
      }
    },
  };
}
