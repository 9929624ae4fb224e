/**
 * The Matrix worker: syncs, joins rooms it is invited to by an allowed
 * operator, turns each decrypted message into an `IncomingCommand` for the
 * handler (`handler.ts`), and sends and edits the replies. It holds the crypto
 * store and the replay store; records and runs are the monitor's.
 * @module
 */

import {
  ClientEvent,
  type MatrixClient,
  type MatrixEvent,
  MatrixEventEvent,
  type Room,
  RoomEvent,
  SyncState,
} from "matrix-js-sdk";
import type { RoomMessageEventContent } from "matrix-js-sdk/lib/@types/events.js";
import { type Config, ConfigError } from "../config/config.ts";
import { classify } from "../matrix/events.ts";
import { boundTimelines } from "../matrix/timeline_bound.ts";
import { withRetry } from "../matrix/retry.ts";
import { roomSender } from "../matrix/room_sender.ts";
import { rateLimiter } from "./limits.ts";
import {
  bindDevice,
  connect,
  ensureCrossSigning,
  isolationMode,
  SYNC_PAGE_EVENTS,
  syncFilter,
  whoami,
} from "../matrix/client.ts";
import { openDurableStore } from "../store/durable_idb.ts";
import { storeCipher } from "../store/store_key.ts";
import { openSeenEvents } from "../airlock/replay.ts";
import { openSyncMark } from "./sync_mark.ts";
import type { Monitor } from "./monitor_client.ts";
import { createHandler } from "./handler.ts";
import { createTrustRecheck, senderRefusal, TRUST_FAILURES } from "./sender_trust.ts";
import type { CommandHandler, Replier } from "./reply_parts.ts";
import { fetchDecrypted, uploadEncrypted } from "./file_transfer.ts";
import { editedRuling } from "../matrix/edits.ts";
import { answerInterrupted } from "./interrupted_answers.ts";
import { replyShape } from "./fleet_reply.ts";

/**
 * The SDK's code for a message it has the key for and still cannot decrypt or
 * parse: a malformed ciphertext, or a plaintext its JSON parser refuses (a lone
 * UTF-16 surrogate, which some clients send). Keys that are merely missing have
 * their own codes and may still arrive.
 */
const UNREADABLE = "UNKNOWN_ERROR";
const UNREADABLE_REASON = "this agent cannot decrypt or read that message (its text may hold " +
  "characters that are not valid Unicode, such as a lone surrogate); nothing was run; " +
  "retype it without them";

/** A running Matrix worker. */
export interface MatrixWorker {
  client: MatrixClient;
  userId: string;
  deviceId: string;
  /** Stops syncing, waits for running commands, closes the stores. */
  stop(): Promise<void>;
}

/** A device gets at most one readable refusal this often (ms). */
const READABLE_REFUSAL_EVERY_MS = 5 * 60_000;
/** Readable refusals for all devices together, per minute: each rotates a Megolm session. */
const READABLE_REFUSALS_PER_MINUTE = 10;
const READABLE_NOTE =
  'This device can read this refusal only: replies go to verified devices alone. See the README, "Operators".';

/** Logs one line to stderr (journald adds the time). */
export type Log = (msg: string) => void;

/** How the worker reports, and what the monitor told it. */
export interface WorkerOptions {
  log: Log;
  /** Reports an unrecoverable error to the monitor; does not return. */
  fatal: (message: string) => never;
  /** Who commands run as, for `status`. */
  execAs: string;
  verbose: boolean;
}

/**
 * Opens the crypto store and the replay store in the state dir (the monitor
 * made it), connects and starts syncing. Resolves once the first sync is done
 * and commands are answered.
 */
export async function startMatrixWorker(
  config: Config,
  monitor: Monitor,
  opts: WorkerOptions,
): Promise<MatrixWorker> {
  const { log, verbose } = opts;
  // A host may boot before its homeserver is reachable: wait for it, however
  // long, rather than exit and have the unit give up.
  const who = await withRetry(() => whoami(config.homeserver, config.accessToken), {
    deadlineMs: Infinity,
    stopped: () => false, // the monitor ends this Worker on a signal
    log,
    what: `reaching ${config.homeserver} (whoami)`,
  });
  if (who.userId !== config.userId) {
    throw new ConfigError(
      "TIBET_NC_ACCESS_TOKEN",
      `it belongs to ${who.userId}, not TIBET_NC_USER_ID ${config.userId}`,
    );
  }
  if (config.deviceId && config.deviceId !== who.deviceId) {
    throw new ConfigError(
      "TIBET_NC_DEVICE_ID",
      `it is ${config.deviceId} but the access token is for device ${who.deviceId}`,
    );
  }
  bindDevice(config.stateDir, who);
  const cryptoDir = `${config.stateDir}/crypto`;
  const store = await openDurableStore(
    cryptoDir,
    storeCipher(cryptoDir, config.storePassphrase),
    (e) => {
      // Going on would acknowledge keys that are not on disk.
      return opts.fatal(`cannot write the crypto store in ${cryptoDir}: ${(e as Error).message}`);
    },
  );
  const seen = openSeenEvents(
    `${config.stateDir}/seen-events`,
    Math.max(config.timebox * 4000, 86_400_000),
  );
  const client = await connect(config, who, store, verbose);
  const mark = openSyncMark(`${config.stateDir}/sync-mark`, log);
  const handler: CommandHandler = createHandler({
    config,
    seen,
    monitor,
    execAs: opts.execAs,
    log,
    mark,
  });

  const running = new Set<Promise<void>>();
  // Ids seen this run, so a decrypted event is not handled twice (the SDK emits both
  // Timeline and Decrypted); bounded, the durable replay store is the real guard.
  const handled = new Set<string>();
  const markHandled = (id: string) => {
    handled.add(id);
    if (handled.size > 10_000) handled.delete(handled.values().next().value!);
  };

  let stopping = false;
  // A reply may wait out a homeserver outage of up to 10 minutes.
  const retry = (what: string) => ({
    deadlineMs: 10 * 60_000,
    stopped: () => stopping,
    log,
    what,
  });
  const sender = roomSender(client, isolationMode(config));
  const post = (roomId: string, content: Record<string, unknown>) => () =>
    client.sendMessage(roomId, content as unknown as RoomMessageEventContent);
  const shape = replyShape(config);
  const replier = (roomId: string, eventId: string): Replier => ({
    async send(parts) {
      const content = post(roomId, shape.reply(eventId, parts));
      const sent = await withRetry(() => sender.send(content), retry(`reply to ${eventId}`));
      return sent.event_id;
    },
    async edit(replyId, parts) {
      const content = post(roomId, shape.edit(replyId, parts));
      await withRetry(() => sender.send(content), retry(`edit of ${replyId}`));
    },
    async sendFile(name, size, body) {
      const file = await uploadEncrypted(config, eventId, name, size, body);
      const content = post(roomId, shape.file(eventId, file));
      const sent = await withRetry(() => sender.send(content), retry(`file to ${eventId}`));
      return sent.event_id;
    },
  });
  // A refused device's refusal must be readable by that device, and nothing
  // else: its own Megolm session, no provenance line (the record's number and
  // hash are host detail), bounded so no device can make the agent rotate
  // sessions at will. Past the bound it is answered like any other refusal.
  const readablePerDevice = rateLimiter(1, READABLE_REFUSAL_EVERY_MS);
  const readableInAll = rateLimiter(READABLE_REFUSALS_PER_MINUTE);
  const readableReplier = (roomId: string, eventId: string, device: string): Replier => ({
    async send(parts) {
      if (!readablePerDevice.take(device) || !readableInAll.take("*")) {
        return await replier(roomId, eventId).send(parts);
      }
      const content = post(
        roomId,
        shape.reply(eventId, { head: `${parts.head}. Nothing ran. ${READABLE_NOTE}` }),
      );
      const sent = await withRetry(
        () => sender.sendToEveryDevice(roomId, content),
        retry(`refusal to ${eventId}, readable by its device`),
      );
      log(`refusal of ${eventId} sent readable by ${device} (a session of its own)`);
      return sent.event_id;
    },
    edit: (replyId, parts) => replier(roomId, eventId).edit(replyId, parts),
    sendFile: () => Promise.reject(new Error("a refused device gets no file")),
  });

  // A command is done once its handler has sent the final reply; one left
  // unfinished by a stop is answered by the next run (interrupted.ts).
  const keep = (t: Promise<void>) => {
    running.add(t);
    t.finally(() => running.delete(t));
  };
  const track = (task: Promise<void>, id: string) =>
    keep(
      task.then(() => seen.done(id)).catch((e) =>
        log(`error handling ${id}: ${(e as Error).stack ?? e}`)
      ),
    );

  // Refuses an event that will never decrypt, for good: an untrusted device, or
  // a message the crypto cannot read.
  const refuseUndecryptable = (event: MatrixEvent, refusal: { rule: string; reason: string }) => {
    const id = event.getId()!;
    const roomId = event.getRoomId()!;
    const sender = event.getSender() ?? "";
    if (handled.has(id)) return;
    markHandled(id);
    log(`cannot accept ${id} from ${sender}: ${event.decryptionFailureReason}`);
    const cmd = {
      text: "(undecryptable)",
      sender,
      roomId,
      eventId: id,
      originTs: event.getTs(),
      refusal,
    };
    // An untrusted device cannot read ordinary replies: tell it in one it can.
    const wire = event.getWireContent();
    const device = `${sender} ${wire.device_id ?? wire.sender_key ?? "?"}`;
    const reply = refusal.rule === "deny.device"
      ? readableReplier(roomId, id, device)
      : replier(roomId, id);
    track(handler(cmd, reply), id);
  };
  const refuseUntrusted = (event: MatrixEvent) =>
    refuseUndecryptable(event, {
      rule: "deny.device",
      reason: TRUST_FAILURES[String(event.decryptionFailureReason)] ??
        "your device is not trusted",
    });
  const recheck = createTrustRecheck(client, refuseUntrusted);
  const pinned = (user: string) =>
    log(`pinned the new identity of ${user}, approved with tibet-nc trust`);

  const onEvent = (event: MatrixEvent) => {
    const id = event.getId();
    const roomId = event.getRoomId();
    if (!id || !roomId || handled.has(id) || event.isBeingDecrypted()) return;
    if (event.isDecryptionFailure()) {
      const sender = event.getSender() ?? "";
      const code = String(event.decryptionFailureReason);
      const allowed = config.allowedUsers.includes(sender);
      if (code === UNREADABLE && allowed) {
        refuseUndecryptable(event, { rule: "deny.unreadable", reason: UNREADABLE_REASON });
      } else if (TRUST_FAILURES[code] && allowed) {
        recheck.failed(event);
      } else if (TRUST_FAILURES[code] || code === UNREADABLE) {
        // A stranger's, and final: not answered, like all of theirs.
        markHandled(id);
        log(`cannot accept ${id} from ${sender}: ${code}`);
      }
      // Any other code is a missing key that may still arrive; the SDK then
      // decrypts again and we get another call.
      return;
    }
    recheck.settled(id);
    if (event.getWireType() === "m.room.encrypted" && !event.getClearContent()) return;
    markHandled(id);
    const c = classify(
      {
        sender: event.getSender() ?? "",
        encrypted: event.getWireType() === "m.room.encrypted",
        type: event.getType(),
        // The original content: an edit the SDK applied must never become a command.
        content: event.getOriginalContent() as Record<string, unknown>,
        roomId,
      },
      who.userId,
      config.room,
    );
    // An edit never acts; one that would approve or reject is still judged and recorded.
    const edited = c.kind === "ignore" ? editedRuling(c, event.getOriginalContent()) : null;
    if (c.kind === "ignore" && edited === null) return;
    const sender = event.getSender()!;
    const originTs = event.getTs();
    const reply = replier(roomId, id);
    const judge = () => senderRefusal(client, config, event, pinned);
    if (edited !== null) {
      return track(
        handler({ text: edited, sender, roomId, eventId: id, originTs, judge, edit: true }, reply),
        id,
      );
    }
    if (c.kind === "ignore") return;
    const { attachment } = c;
    const fetchAttachment = attachment && (() => fetchDecrypted(config, attachment));
    track(
      handler({
        text: c.text,
        sender,
        roomId,
        eventId: id,
        originTs,
        judge,
        attachment,
        fetchAttachment,
        target: c.target,
      }, reply),
      id,
    );
  };

  client.on(RoomEvent.Timeline, (event: MatrixEvent, _room, toStart?: boolean) => {
    if (!toStart) onEvent(event);
  });
  client.on(MatrixEventEvent.Decrypted, (event: MatrixEvent) => onEvent(event));
  // A sync past SYNC_PAGE_EVENTS skips the gap; say so rather than lose it quietly.
  boundTimelines(client, (room) => {
    if (room.getMyMembership() !== "join") return;
    log(
      `warning: more than ${SYNC_PAGE_EVENTS} events arrived in ${room.roomId} at once; ` +
        `commands among the earlier ones were not seen and are not answered`,
    );
  });
  // Our own membership of the room as the sync settles it: the invite events in a
  // joined room's timeline (replayed by every first sync) do not count.
  client.on(RoomEvent.MyMembership, (room: Room, membership: string) => {
    if (membership !== "invite") return;
    const inviter = room.getMember(who.userId)?.events.member?.getSender() ?? "";
    if (config.allowedUsers.includes(inviter)) {
      log(`joining ${room.roomId} (invited by ${inviter})`);
      client.joinRoom(room.roomId).catch((e) => log(`cannot join ${room.roomId}: ${e.message}`));
    } else {
      log(`declining invite to ${room.roomId} from ${inviter}: not in TIBET_NC_ALLOWED_USERS`);
      client.leave(room.roomId).catch(() => {});
    }
  });

  let timer: ReturnType<typeof setTimeout> | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    client.on(ClientEvent.Sync, (state: SyncState, _prev, data?: { error?: Error }) => {
      if (state === SyncState.Prepared || state === SyncState.Syncing) {
        resolve();
      } else if (state === SyncState.Error) {
        log(`sync error: ${data?.error?.message ?? "unknown"}; retrying`);
      }
    });
    timer = setTimeout(
      () => reject(new Error(`first sync with ${config.homeserver} did not finish in 120 s`)),
      120_000,
    );
  });
  await client.startClient({
    initialSyncLimit: 20,
    lazyLoadMembers: true,
    filter: syncFilter(who.userId),
  });
  try {
    await ready;
  } finally {
    clearTimeout(timer);
  }
  await ensureCrossSigning(client);
  const head = monitor.chain().head;
  log(
    `ready: ${who.userId} device ${who.deviceId}, ${config.allowedUsers.length} allowed operator(s), chain #${head.seq}`,
  );
  keep(
    answerInterrupted({ seen, monitor, allowedUsers: config.allowedUsers, replier, log }).catch((
      e,
    ) => log(`error answering the previous run's commands: ${e}`)),
  );

  return {
    client,
    userId: who.userId,
    deviceId: who.deviceId,
    async stop() {
      stopping = true;
      recheck.stop();
      client.stopClient();
      await Promise.allSettled([...running]);
      mark.close();
      seen.close();
      store.close();
    },
  };
}
