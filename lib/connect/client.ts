/**
 * The operator's own Matrix device for `connect`: rust crypto on the same
 * durable store the agent keeps (so its Olm and Megolm state survives a
 * crash), only cross-signed devices trusted both ways, one sync loop, and the
 * room the agents are in.
 * @module
 */

import { ClientEvent, Filter, KnownMembership, type MatrixClient, SyncState } from "matrix-js-sdk";
import { OnlySignedDevicesIsolationMode } from "matrix-js-sdk/lib/crypto-api/index.js";
import type { CryptoBackend } from "matrix-js-sdk/lib/common-crypto/CryptoBackend.js";
import { startCrypto } from "../matrix/client.ts";
import { quietLogger, quietSdkGlobalLogger, silentLogger } from "../matrix/logger.ts";
import { type DurableStore, openDurableStore } from "../store/durable_idb.ts";
import { storeCipher } from "../store/store_key.ts";
import { ConnectError, EXIT } from "./options.ts";
import { type SavedSession, statePaths } from "./state.ts";

/** A running client and what closes it. */
export interface ConnectClient {
  client: MatrixClient;
  /** Where `getSecretStorageKey` finds the key the operator gave (recovery key or passphrase). */
  secretKey: { value: [string, Uint8Array<ArrayBuffer>] | null };
  close(): void;
}

/** Opens the crypto store and starts rust crypto for the saved session; does not sync. */
export async function openClient(
  session: SavedSession,
  stateDir: string,
  verbose: boolean,
): Promise<ConnectClient> {
  quietSdkGlobalLogger(!verbose);
  const dir = statePaths(stateDir).crypto;
  Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const store: DurableStore = await openDurableStore(dir, storeCipher(dir, null), (e) => {
    console.error(
      `tibet-nc connect: fatal: cannot write the crypto store in ${dir}: ${(e as Error).message}`,
    );
    Deno.exit(EXIT.connection);
  });
  const secretKey: ConnectClient["secretKey"] = { value: null };
  let client: MatrixClient;
  try {
    client = await startCrypto(
      session.homeserver,
      session.accessToken,
      session,
      store,
      verbose ? quietLogger("matrix", true) : silentLogger(),
      {
        cryptoCallbacks: {
          getSecretStorageKey: ({ keys }) => {
            const k = secretKey.value;
            return Promise.resolve(k && k[0] in keys ? k : null);
          },
        },
      },
    );
  } catch (e) {
    store.close();
    throw new ConnectError(
      `cannot open this client's keys in ${dir}: ${(e as Error).message}`,
      EXIT.connection,
    );
  }
  // Commands go only to devices their owners cross-signed: an agent's device,
  // never a device the homeserver slipped into its account.
  client.getCrypto()!.setDeviceIsolationMode(new OnlySignedDevicesIsolationMode());
  // No sync token is kept: whose devices changed meanwhile is not known; ask again.
  await (client.getCrypto() as unknown as CryptoBackend).markAllTrackedUsersAsDirty();
  return {
    client,
    secretKey,
    close: () => {
      client.stopClient();
      store.close();
    },
  };
}

/**
 * Starts the sync loop and waits for the first sync. `onState` hears later
 * losses and recoveries of the homeserver.
 */
export async function startSync(
  client: MatrixClient,
  timeoutMs: number,
  onState: (state: SyncState, error?: Error) => void,
): Promise<void> {
  const filter = new Filter(client.getUserId()!);
  filter.setDefinition({
    room: {
      state: { lazy_load_members: true },
      timeline: { limit: 50 },
      ephemeral: { not_types: ["*"] },
    },
    presence: { not_types: ["*"] },
    // Unique per start: Synapse caches an initial sync's answer for minutes,
    // and a second start would be handed the first one's to-device messages.
    account_data: { not_types: [`org.tibet-nc.start.${crypto.randomUUID()}`] },
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(
        new ConnectError(
          `no sync with ${client.baseUrl} within ${timeoutMs / 1000} s: is the homeserver up?`,
          EXIT.connection,
        ),
      );
    }, timeoutMs);
    client.on(ClientEvent.Sync, (state: SyncState, _prev, data) => {
      if (state === SyncState.Prepared) {
        clearTimeout(timer);
        resolve();
      }
      onState(state, data?.error);
    });
    client.startClient({ initialSyncLimit: 10, filter, lazyLoadMembers: true }).catch(reject);
  });
}

/**
 * The room to use: `wanted` (an id or alias, joined if invited), or the one
 * encrypted room this account is in. Refuses an unencrypted room: agents
 * ignore them.
 */
export async function resolveRoom(client: MatrixClient, wanted: string | null): Promise<string> {
  let roomId: string;
  if (wanted === null) {
    const rooms = client.getRooms().filter((r) =>
      r.getMyMembership() === KnownMembership.Join && r.hasEncryptionStateEvent()
    );
    if (rooms.length !== 1) {
      const list = rooms.map((r) => `${r.roomId} (${r.name})`).join(", ");
      throw new ConnectError(
        rooms.length === 0
          ? `${client.getUserId()} is in no encrypted room: pass --room, or ask for an invitation`
          : `${client.getUserId()} is in ${rooms.length} encrypted rooms (${list}): pass --room`,
        EXIT.usage,
      );
    }
    roomId = rooms[0].roomId;
  } else if (wanted.startsWith("#")) {
    try {
      roomId = (await client.getRoomIdForAlias(wanted)).room_id;
    } catch (e) {
      throw new ConnectError(
        `unknown room ${wanted}: ${(e as Error).message}`,
        EXIT.connection,
      );
    }
  } else roomId = wanted;
  const membership = client.getRoom(roomId)?.getMyMembership();
  if (membership !== KnownMembership.Join) {
    try {
      await client.joinRoom(roomId);
    } catch (e) {
      throw new ConnectError(
        `${client.getUserId()} is not in room ${wanted} and cannot join it ` +
          `(${(e as Error).message}): check the room id, or ask to be invited`,
        EXIT.connection,
      );
    }
    const deadline = Date.now() + 20_000;
    while (client.getRoom(roomId)?.getMyMembership() !== KnownMembership.Join) {
      if (Date.now() > deadline) {
        throw new ConnectError(`joined ${wanted}, but it never arrived in sync`, EXIT.connection);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const deadline = Date.now() + 10_000;
  while (!(await client.getCrypto()!.isEncryptionEnabledInRoom(roomId))) {
    if (Date.now() > deadline) {
      throw new ConnectError(
        `room ${wanted ?? roomId} is not end-to-end encrypted: agents ignore commands there`,
        EXIT.connection,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return roomId;
}
