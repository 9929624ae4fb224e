/**
 * The operator side of the tests and the demo: a second matrix-js-sdk instance
 * with rust crypto (in memory) and cross-signing bootstrapped, so its device is
 * signed by its owner as the agent's device isolation mode demands.
 * @module
 */

import "fake-indexeddb/auto";
import {
  ClientEvent,
  createClient,
  Filter,
  type MatrixClient,
  type MatrixEvent,
  MatrixEventEvent,
  MsgType,
  Preset,
  RelationType,
  RoomEvent,
  SyncState,
} from "matrix-js-sdk";
import { quietLogger, quietSdkGlobalLogger, silentLogger } from "../../lib/matrix/logger.ts";
import type { Registered } from "./synapse.ts";

/** A logged-in operator. */
export interface Operator {
  client: MatrixClient;
  userId: string;
  /** Creates a room (encrypted unless `encrypted` is false) and invites `invite`. */
  createRoom(invite: string[], encrypted?: boolean): Promise<string>;
  /** Waits until this client has joined `roomId` and knows whether it is encrypted. */
  waitForRoom(roomId: string, timeoutMs?: number): Promise<void>;
  /** Waits until `userId` has joined `roomId`. */
  waitForJoin(roomId: string, userId: string, timeoutMs?: number): Promise<void>;
  /** Sends a text message; returns its event id. */
  send(roomId: string, body: string): Promise<string>;
  /** Sends an edit (`m.replace`) of `eventId` with the new body; returns its id. */
  edit(roomId: string, eventId: string, body: string): Promise<string>;
  /** Waits for a notice that replies to `eventId`; returns its body. */
  waitForReply(roomId: string, eventId: string, timeoutMs?: number): Promise<MatrixEvent>;
  /**
   * Waits until the reply to `eventId` (or its latest edit) carries the
   * provenance line; returns that final body.
   */
  waitForFinal(roomId: string, eventId: string, timeoutMs?: number): Promise<string>;
  /**
   * Waits for the answer to `eventId` as a person reads it: the reply (or its
   * latest edit) once it is no longer a "running" progress line. Built-ins such
   * as `help` and `status` have no provenance line, so this is what a console uses.
   */
  waitForAnswer(roomId: string, eventId: string, timeoutMs?: number): Promise<string>;
  /** Bodies of the edits of reply `replyId`, in order. */
  edits(roomId: string, replyId: string): string[];
  /** The top-level bodies of those edits: what a client without edits shows. */
  editFallbacks(roomId: string, replyId: string): string[];
  /** Replaces the user's cross-signing identity (a new master key). */
  resetIdentity(): Promise<void>;
  /**
   * Sets up secret storage holding the cross-signing keys, as Element's "set up
   * recovery" does; returns the recovery key (made from `passphrase` if given).
   */
  setUpRecovery(passphrase?: string): Promise<string>;
  /** Every decrypted notice seen so far in `roomId`. */
  notices(roomId: string): MatrixEvent[];
  /** Decrypted file messages (`m.file`) replying to `eventId`, in order of arrival. */
  fileReplies(roomId: string, eventId: string): MatrixEvent[];
  stop(): void;
}

/** What the SDK may print: its warnings and errors, or nothing (the demo's console). */
export type SdkLog = "warnings" | "silent";

/**
 * Logs in with an existing access token and bootstraps cross-signing (unless
 * `crossSign` is false: a device its owner never signed).
 */
export async function startOperator(
  homeserver: string,
  user: Registered,
  crossSign = true,
  sdkLog: SdkLog = "warnings",
): Promise<Operator> {
  quietSdkGlobalLogger(sdkLog === "silent");
  // The secret storage key, once setUpRecovery made one.
  let ssKey: [string, Uint8Array<ArrayBuffer>] | null = null;
  const client = createClient({
    baseUrl: homeserver,
    accessToken: user.accessToken,
    userId: user.userId,
    deviceId: user.deviceId,
    logger: sdkLog === "silent" ? silentLogger() : quietLogger(`operator ${user.userId}`),
    cryptoCallbacks: {
      getSecretStorageKey: ({ keys }) => Promise.resolve(ssKey && ssKey[0] in keys ? ssKey : null),
      cacheSecretStorageKey: (keyId, _info, key) => {
        ssKey = [keyId, key];
      },
    },
  });
  await client.initRustCrypto({ useIndexedDB: false });
  const crypto = client.getCrypto()!;
  if (crossSign) {
    await crypto.bootstrapCrossSigning({
      authUploadDeviceSigningKeys: async (makeRequest) => {
        await makeRequest({
          type: "m.login.password",
          identifier: { type: "m.id.user", user: user.userId },
          password: user.password,
        });
      },
    });
  }

  const seen = new Map<string, MatrixEvent[]>();
  const editsOf = (roomId: string, replyId: string) =>
    (seen.get(roomId) ?? []).filter((ev) => {
      const rel = ev.getContent()["m.relates_to"];
      return rel?.rel_type === "m.replace" && rel.event_id === replyId;
    });
  const waiters = new Set<() => void>();
  const files: MatrixEvent[] = [];
  const note = (ev: MatrixEvent) => {
    if (ev.isBeingDecrypted() || ev.isDecryptionFailure()) return;
    if (ev.getType() === "m.room.message" && ev.getContent().msgtype === "m.file") {
      if (!files.includes(ev) && ev.getSender() !== user.userId) files.push(ev);
      for (const w of waiters) w();
      return;
    }
    if (ev.getType() !== "m.room.message" || ev.getContent().msgtype !== "m.notice") return;
    const list = seen.get(ev.getRoomId()!) ?? [];
    if (!list.includes(ev)) list.push(ev);
    seen.set(ev.getRoomId()!, list);
    for (const w of waiters) w();
  };
  client.on(RoomEvent.Timeline, (ev: MatrixEvent) => note(ev));
  client.on(MatrixEventEvent.Decrypted, (ev: MatrixEvent) => note(ev));

  await new Promise<void>((resolve) => {
    client.on(ClientEvent.Sync, (s: SyncState) => {
      if (s === SyncState.Prepared) resolve();
    });
    // A page far above any burst a test makes: past Synapse's default of 10 a
    // sync is "limited", the SDK skips the gap, and replies in it are never seen.
    const filter = new Filter(user.userId);
    filter.setDefinition({ room: { timeline: { limit: 1000 } } });
    client.startClient({ initialSyncLimit: 10, filter });
  });

  const until = async (what: string, ok: () => boolean, timeoutMs: number) => {
    if (ok()) return;
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (ok()) {
          clearTimeout(timer);
          clearInterval(poll);
          waiters.delete(check);
          resolve();
        }
      };
      const timer = setTimeout(() => {
        clearInterval(poll);
        waiters.delete(check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const poll = setInterval(check, 100);
      waiters.add(check);
    });
  };

  const operator: Operator = {
    client,
    userId: user.userId,
    async createRoom(invite, encrypted = true) {
      const { room_id } = await client.createRoom({
        preset: Preset.PrivateChat,
        invite,
        initial_state: encrypted
          ? [{
            type: "m.room.encryption",
            state_key: "",
            content: { algorithm: "m.megolm.v1.aes-sha2" },
          }]
          : [],
      });
      await until(`room ${room_id} in sync`, () => client.getRoom(room_id) !== null, 20_000);
      return room_id;
    },
    async waitForRoom(roomId, timeoutMs = 30_000) {
      await until(
        `room ${roomId} joined`,
        () => client.getRoom(roomId)?.getMyMembership() === "join",
        timeoutMs,
      );
      // The crypto learns of the room's encryption from its state, a moment later.
      const deadline = Date.now() + timeoutMs;
      while (!(await crypto.isEncryptionEnabledInRoom(roomId))) {
        if (Date.now() > deadline) throw new Error(`room ${roomId}: encryption never set up`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async waitForJoin(roomId, userId, timeoutMs = 30_000) {
      await until(
        `${userId} to join ${roomId}`,
        () => client.getRoom(roomId)?.getMember(userId)?.membership === "join",
        timeoutMs,
      );
    },
    async send(roomId, body) {
      const { event_id } = await client.sendMessage(roomId, { msgtype: MsgType.Text, body });
      return event_id;
    },
    async edit(roomId, eventId, body) {
      const { event_id } = await client.sendMessage(roomId, {
        msgtype: MsgType.Text,
        body: `* ${body}`,
        "m.new_content": { msgtype: MsgType.Text, body },
        "m.relates_to": { rel_type: RelationType.Replace, event_id: eventId },
      });
      return event_id;
    },
    async waitForReply(roomId, eventId, timeoutMs = 30_000) {
      let found: MatrixEvent | undefined;
      await until(`a reply to ${eventId}`, () => {
        found = (seen.get(roomId) ?? []).find((ev) =>
          ev.getOriginalContent()["m.relates_to"]?.["m.in_reply_to"]?.event_id === eventId
        );
        return found !== undefined;
      }, timeoutMs);
      return found!;
    },
    async waitForAnswer(roomId, eventId, timeoutMs = 60_000) {
      const reply = await operator.waitForReply(roomId, eventId, timeoutMs);
      let body = "";
      await until(`the answer to ${eventId}`, () => {
        body = operator.edits(roomId, reply.getId()!).at(-1) ?? reply.getContent().body;
        return !/^running #\d+ /.test(body);
      }, timeoutMs);
      return body;
    },
    async waitForFinal(roomId, eventId, timeoutMs = 60_000) {
      const reply = await operator.waitForReply(roomId, eventId, timeoutMs);
      let body = "";
      await until(`the final reply to ${eventId}`, () => {
        const edits = operator.edits(roomId, reply.getId()!);
        body = edits.at(-1) ?? reply.getContent().body;
        return /^TIBET: /m.test(body);
      }, timeoutMs);
      return body;
    },
    edits(roomId, replyId) {
      return editsOf(roomId, replyId).map((ev) => ev.getContent()["m.new_content"]?.body ?? "");
    },
    editFallbacks(roomId, replyId) {
      return editsOf(roomId, replyId).map((ev) => ev.getContent().body ?? "");
    },
    async resetIdentity() {
      await crypto.bootstrapCrossSigning({
        setupNewCrossSigning: true,
        authUploadDeviceSigningKeys: async (makeRequest) => {
          await makeRequest({
            type: "m.login.password",
            identifier: { type: "m.id.user", user: user.userId },
            password: user.password,
          });
        },
      });
    },
    async setUpRecovery(passphrase) {
      const recovery = await crypto.createRecoveryKeyFromPassphrase(passphrase);
      await crypto.bootstrapSecretStorage({
        createSecretStorageKey: () => Promise.resolve(recovery),
        setupNewSecretStorage: true,
      });
      return recovery.encodedPrivateKey!;
    },
    notices: (roomId) => [...(seen.get(roomId) ?? [])],
    fileReplies: (roomId, eventId) =>
      files.filter((ev) =>
        ev.getRoomId() === roomId &&
        ev.getContent()["m.relates_to"]?.["m.in_reply_to"]?.event_id === eventId
      ),
    stop: () => client.stopClient(),
  };
  return operator;
}
