/**
 * The floor of the benchmarks: a bare end-to-end-encrypted echo bot. Same SDK,
 * same rust crypto, same cross-signing and device isolation mode, same sync
 * filter and unqueued sends (`lib/matrix/client.ts`) as the agent, in
 * its own process, but no airlock, no audit log, no PTY and no durable store (its
 * crypto store is in memory). It joins rooms it is invited to by an allowed user
 * and answers each `$ echo <words>` with an `m.notice` reply (`m.in_reply_to`)
 * whose last line looks like a provenance line, so `Operator.waitForFinal`
 * accepts it:
 *
 * ```
 * exit 0
 * <words>
 * TIBET: floor | L4: - | #<n>
 * ```
 *
 * Any other `$ ` command is answered `floor bot: only echo` with the same last
 * line. Run it with {@linkcode startEchoBot}; as a program it reads its settings
 * from `ECHO_BOT_*` variables and logs `ready: ...` once its first sync is done.
 * @module
 */

import "fake-indexeddb/auto";
import {
  ClientEvent,
  createClient,
  type MatrixEvent,
  MatrixEventEvent,
  RoomEvent,
  type RoomMember,
  RoomMemberEvent,
  SyncState,
} from "matrix-js-sdk";
import { OnlySignedDevicesIsolationMode } from "matrix-js-sdk/lib/crypto-api/index.js";
import type { RoomMessageEventContent } from "matrix-js-sdk/lib/@types/events.js";
import { quietLogger, quietSdkGlobalLogger } from "../../lib/matrix/logger.ts";
import { replyContent } from "../../lib/matrix/reply.ts";
import { syncFilter, unqueuedScheduler } from "../../lib/matrix/client.ts";
import { type AgentProcess, watchProcess } from "./agent_process.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** Settings of the echo bot. */
export interface EchoBotSettings {
  /** Homeserver base URL. */
  homeserver: string;
  /** The bot's user id. */
  userId: string;
  /** Its access token (a device of its own). */
  accessToken: string;
  /** The device of that token. */
  deviceId: string;
  /** Users whose invites it accepts and whose commands it answers. */
  allowedUsers: string[];
}

/**
 * Starts the echo bot as its own process (`deno run` of this file) and returns a
 * handle shaped like an agent process: pid, log lines, `waitFor`, `kill`.
 */
export function startEchoBot(settings: EchoBotSettings): AgentProcess {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-env", "--allow-read", new URL(import.meta.url).pathname],
    cwd: ROOT,
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: Deno.env.get("HOME") ?? "/tmp",
      DENO_DIR: Deno.env.get("DENO_DIR") ?? "",
      NO_COLOR: "1",
      ECHO_BOT_HOMESERVER: settings.homeserver,
      ECHO_BOT_USER_ID: settings.userId,
      ECHO_BOT_ACCESS_TOKEN: settings.accessToken,
      ECHO_BOT_DEVICE_ID: settings.deviceId,
      ECHO_BOT_ALLOWED_USERS: settings.allowedUsers.join(","),
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  return watchProcess(child, "echo bot");
}

function need(name: string): string {
  const v = Deno.env.get(name);
  if (!v) {
    console.error(`echo bot: ${name} is required`);
    Deno.exit(2);
  }
  return v;
}

/** The bot itself: runs until killed. */
async function main(): Promise<void> {
  const homeserver = need("ECHO_BOT_HOMESERVER");
  const userId = need("ECHO_BOT_USER_ID");
  const allowed = need("ECHO_BOT_ALLOWED_USERS").split(",").filter(Boolean);
  quietSdkGlobalLogger();
  const client = createClient({
    baseUrl: homeserver,
    accessToken: need("ECHO_BOT_ACCESS_TOKEN"),
    userId,
    deviceId: need("ECHO_BOT_DEVICE_ID"),
    logger: quietLogger("echo-bot"),
    scheduler: unqueuedScheduler(),
  });
  await client.initRustCrypto({ useIndexedDB: false });
  const crypto = client.getCrypto()!;
  crypto.setDeviceIsolationMode(new OnlySignedDevicesIsolationMode());
  await crypto.bootstrapCrossSigning({
    authUploadDeviceSigningKeys: async (makeRequest) => {
      await makeRequest(null);
    },
  });

  const startedAt = Date.now();
  const handled = new Set<string>();
  let answered = 0;
  const onEvent = (ev: MatrixEvent) => {
    const id = ev.getId();
    const roomId = ev.getRoomId();
    if (!id || !roomId || handled.has(id) || ev.isBeingDecrypted()) return;
    if (ev.isDecryptionFailure()) {
      console.error(`undecryptable ${id}: ${ev.decryptionFailureReason}`);
      return;
    }
    if (ev.getWireType() !== "m.room.encrypted" || !ev.getClearContent()) return;
    handled.add(id);
    if (ev.getTs() < startedAt - 10_000) return; // history
    const sender = ev.getSender() ?? "";
    if (sender === userId || !allowed.includes(sender)) return;
    if (ev.getType() !== "m.room.message") return;
    const c = ev.getContent();
    if (c.msgtype !== "m.text" || typeof c.body !== "string") return;
    if (c["m.relates_to"]?.rel_type === "m.replace") return;
    const body = c.body.trim();
    if (!body.startsWith("$ ")) return;
    const words = body.slice(2).trim().split(/\s+/);
    const n = ++answered;
    const pre = words[0] === "echo" ? words.slice(1).join(" ") : "floor bot: only echo";
    const reply = replyContent(id, { head: "exit 0", pre, tail: `TIBET: floor | L4: - | #${n}` });
    client.sendMessage(roomId, reply as unknown as RoomMessageEventContent).catch((e) =>
      console.error(`cannot reply to ${id}: ${(e as Error).message}`)
    );
  };
  client.on(RoomEvent.Timeline, (ev: MatrixEvent, _room, toStart?: boolean) => {
    if (!toStart) onEvent(ev);
  });
  client.on(MatrixEventEvent.Decrypted, (ev: MatrixEvent) => onEvent(ev));
  client.on(RoomMemberEvent.Membership, (ev: MatrixEvent, member: RoomMember) => {
    if (member.userId !== userId || member.membership !== "invite") return;
    if (client.getRoom(member.roomId)?.getMyMembership() === "join") return;
    if (!allowed.includes(ev.getSender() ?? "")) return;
    client.joinRoom(member.roomId).catch((e) =>
      console.error(`cannot join ${member.roomId}: ${(e as Error).message}`)
    );
  });
  await new Promise<void>((resolve) => {
    client.on(ClientEvent.Sync, (state: SyncState) => {
      if (state === SyncState.Prepared || state === SyncState.Syncing) resolve();
    });
    // The agent's sync and send settings, so the baseline differs only in what the
    // agent adds: airlock, audit, PTY.
    client.startClient({ initialSyncLimit: 20, lazyLoadMembers: true, filter: syncFilter(userId) });
  });
  console.error(`ready: ${userId} device ${client.getDeviceId()} (echo bot, no airlock)`);
  Deno.addSignalListener("SIGTERM", () => {
    client.stopClient();
    Deno.exit(0);
  });
}

if (import.meta.main) await main();
