/**
 * The agent: syncs with the homeserver, joins rooms it is invited to by an
 * allowed operator, and turns each decrypted command into a reply. One command's
 * path: `onEvent` -> `classify` -> checks -> `CommandHandler` -> `sendReply`.
 * @module
 */

import {
  ClientEvent,
  type MatrixClient,
  type MatrixEvent,
  MatrixEventEvent,
  type Room,
  RoomEvent,
  type RoomMember,
  RoomMemberEvent,
  SyncState,
} from "matrix-js-sdk";
import type { Config } from "../config/config.ts";
import { classify } from "../matrix/events.ts";
import { replyContent } from "../matrix/reply.ts";
import { bindDevice, connect, whoami } from "../matrix/client.ts";
import { openDurableStore } from "../store/durable_idb.ts";
import { storeCipher } from "../store/store_key.ts";
import { openSeenEvents, type SeenEvents } from "../airlock/replay.ts";

/** A command that passed the Matrix-level checks. */
export interface CommandRequest {
  text: string;
  sender: string;
  roomId: string;
  eventId: string;
  originTs: number;
}

/** What a reply says. */
export interface ReplyParts {
  head?: string;
  pre?: string;
  tail?: string;
}

/** Runs one command (or built-in) and says what to answer. */
export type CommandHandler = (req: CommandRequest) => Promise<ReplyParts>;

/** A running agent. */
export interface Agent {
  client: MatrixClient;
  userId: string;
  deviceId: string;
  /** Stops syncing, waits for running commands, closes the stores. */
  stop(): Promise<void>;
}

/** Logs one line to stderr (journald adds the time). */
export type Log = (msg: string) => void;

/**
 * Prepares the state dir, opens the durable crypto store, connects, and starts
 * syncing. Resolves once the first sync is done and the agent answers commands.
 */
export async function startAgent(
  config: Config,
  handler: CommandHandler,
  log: Log,
  verbose = false,
): Promise<Agent> {
  Deno.mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  const who = await whoami(config.homeserver, config.accessToken);
  if (who.userId !== config.userId) {
    throw new Error(
      `TIBET_NC_ACCESS_TOKEN belongs to ${who.userId}, not TIBET_NC_USER_ID ${config.userId}`,
    );
  }
  if (config.deviceId && config.deviceId !== who.deviceId) {
    throw new Error(
      `TIBET_NC_DEVICE_ID is ${config.deviceId} but the access token is for device ${who.deviceId}`,
    );
  }
  bindDevice(config.stateDir, who);
  const cryptoDir = `${config.stateDir}/crypto`;
  const store = await openDurableStore(
    cryptoDir,
    storeCipher(cryptoDir, config.storePassphrase),
    (e) => {
      // Going on would acknowledge keys that are not on disk.
      log(`fatal: cannot write the crypto store in ${cryptoDir}: ${(e as Error).message}`);
      Deno.exit(70);
    },
  );
  const seen = openSeenEvents(
    `${config.stateDir}/seen-events`,
    Math.max(config.timebox * 1000 * 4, 86_400_000),
  );
  const client = await connect(config, who, store, verbose);

  const running = new Set<Promise<void>>();
  let live = false;
  const handled = new Set<string>();

  const onEvent = (event: MatrixEvent) => {
    const id = event.getId();
    if (!id || handled.has(id) || event.isDecryptionFailure() || event.isBeingDecrypted()) {
      if (id && event.isDecryptionFailure() && !handled.has(id)) {
        handled.add(id);
        log(`cannot decrypt ${id} from ${event.getSender()}: ${event.decryptionFailureReason}`);
      }
      return;
    }
    if (event.getWireType() === "m.room.encrypted" && !event.getClearContent()) return;
    handled.add(id);
    const task = onMessage(event).catch((e) =>
      log(`error handling ${id}: ${(e as Error).stack ?? e}`)
    );
    running.add(task);
    task.finally(() => running.delete(task));
  };

  const onMessage = async (event: MatrixEvent) => {
    const roomId = event.getRoomId()!;
    const sender = event.getSender() ?? "";
    const c = classify(
      {
        sender,
        encrypted: event.getWireType() === "m.room.encrypted" && !event.isDecryptionFailure(),
        type: event.getType(),
        content: event.getContent() as Record<string, unknown>,
        roomId,
      },
      who.userId,
      config.room,
    );
    if (c.kind === "ignore") return;
    if (!config.allowedUsers.includes(sender)) {
      log(`ignored a command from ${sender}: not in TIBET_NC_ALLOWED_USERS`);
      return;
    }
    const eventId = event.getId()!;
    const ts = event.getTs();
    const age = Date.now() - ts;
    if (seen.has(eventId)) return;
    if (Math.abs(age) > config.timebox * 1000) {
      if (!live) return; // history delivered by the first sync after a restart
      if (!seen.claim(eventId, ts)) return;
      log(`expired: ${eventId} from ${sender} is ${Math.round(age / 1000)} s old`);
      await sendReply(client, roomId, eventId, {
        head: `expired: this command is ${
          Math.round(age / 1000)
        } s old; TIBET_NC_TIMEBOX is ${config.timebox} s. Not run.`,
      });
      return;
    }
    if (!seen.claim(eventId, ts)) return;
    log(`command ${eventId} from ${sender} in ${roomId}`);
    const parts = await handler({ text: c.text, sender, roomId, eventId, originTs: ts });
    await sendReply(client, roomId, eventId, parts);
  };

  client.on(
    RoomEvent.Timeline,
    (event: MatrixEvent, _room: Room | undefined, toStart?: boolean) => {
      if (!toStart) onEvent(event);
    },
  );
  client.on(MatrixEventEvent.Decrypted, (event: MatrixEvent) => {
    if (event.getRoomId()) onEvent(event);
  });
  client.on(RoomMemberEvent.Membership, (event: MatrixEvent, member: RoomMember) => {
    if (member.userId !== who.userId || member.membership !== "invite") return;
    // The first sync after a restart replays old invites of rooms we are in.
    if (client.getRoom(member.roomId)?.getMyMembership() === "join") return;
    const inviter = event.getSender() ?? "";
    if (config.allowedUsers.includes(inviter)) {
      log(`joining ${member.roomId} (invited by ${inviter})`);
      client.joinRoom(member.roomId).catch((e) =>
        log(`cannot join ${member.roomId}: ${e.message}`)
      );
    } else {
      log(`declining invite to ${member.roomId} from ${inviter}: not in TIBET_NC_ALLOWED_USERS`);
      client.leave(member.roomId).catch(() => {});
    }
  });

  const ready = new Promise<void>((resolve, reject) => {
    client.on(
      ClientEvent.Sync,
      (state: SyncState, _prev: SyncState | null, data?: { error?: Error }) => {
        if (state === SyncState.Prepared || state === SyncState.Syncing) {
          live = true;
          resolve();
        } else if (state === SyncState.Error && !live) {
          log(`sync error: ${data?.error?.message ?? "unknown"}; retrying`);
        }
      },
    );
    setTimeout(
      () => reject(new Error(`first sync with ${config.homeserver} did not finish in 120 s`)),
      120_000,
    );
  });
  await client.startClient({ initialSyncLimit: 20, lazyLoadMembers: true });
  await ready;
  log(
    `ready: ${who.userId} device ${who.deviceId}, ${config.allowedUsers.length} allowed operator(s)`,
  );

  return {
    client,
    userId: who.userId,
    deviceId: who.deviceId,
    async stop() {
      client.stopClient();
      await Promise.allSettled([...running]);
      await new Promise((r) => setTimeout(r, 50));
      seen.close();
      store.close();
    },
  };
}

async function sendReply(
  client: MatrixClient,
  roomId: string,
  eventId: string,
  parts: ReplyParts,
): Promise<void> {
  // deno-lint-ignore no-explicit-any -- the SDK types content per event type; ours is a valid m.room.message
  await client.sendMessage(roomId, replyContent(eventId, parts) as any);
}

export type { SeenEvents };
