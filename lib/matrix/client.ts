/**
 * Connects the agent to its homeserver: checks the access token, binds the state
 * dir to one device, and starts rust crypto on the durable store with the device
 * isolation mode that only trusts cross-signed devices.
 * @module
 */

import {
  createClient,
  Filter,
  type ICreateClientOpts,
  type MatrixClient,
  MatrixScheduler,
} from "matrix-js-sdk";
import type { Logger } from "matrix-js-sdk/lib/logger.js";
import {
  AllDevicesIsolationMode,
  type DeviceIsolationMode,
  OnlySignedDevicesIsolationMode,
} from "matrix-js-sdk/lib/crypto-api/index.js";
import type { CryptoBackend } from "matrix-js-sdk/lib/common-crypto/CryptoBackend.js";
import * as fakeIdb from "fake-indexeddb";
import { type Config, ConfigError } from "../config/config.ts";
import type { DurableStore } from "../store/durable_idb.ts";
import { quietLogger, quietSdkGlobalLogger } from "./logger.ts";

/** Who the access token belongs to, as the homeserver says. */
export interface WhoAmI {
  userId: string;
  deviceId: string;
}

/**
 * The homeserver could not be asked, or answered 5xx/429: worth waiting for
 * (`retryable` in retry.ts reads `name` and `httpStatus`).
 */
export class HomeserverUnavailable extends Error {
  httpStatus?: number;
  constructor(message: string, httpStatus?: number) {
    super(message);
    // The name retry.ts's `retryable` gives every connection failure.
    this.name = httpStatus === undefined ? "ConnectionError" : "HomeserverUnavailable";
    this.httpStatus = httpStatus;
  }
}

/**
 * Asks the homeserver whose token this is. Throws HomeserverUnavailable when it
 * cannot be reached or is overloaded, and a ConfigError naming the variable when
 * a setting is wrong (token rejected, not a Matrix server).
 */
export async function whoami(homeserver: string, accessToken: string): Promise<WhoAmI> {
  let r: Response;
  try {
    r = await fetch(`${homeserver}/_matrix/client/v3/account/whoami`, {
      headers: { authorization: `Bearer ${accessToken}` },
    });
  } catch (e) {
    throw new HomeserverUnavailable(
      `MATRIX_HOMESERVER: cannot reach ${homeserver}: ${(e as Error).message}`,
    );
  }
  const body = await r.json().catch(() => ({}));
  if (r.status === 401 || r.status === 403) {
    throw new ConfigError(
      "TIBET_NC_ACCESS_TOKEN",
      `the homeserver rejected it (${body.errcode ?? r.status})`,
    );
  }
  if (r.status === 429 || r.status >= 500) {
    throw new HomeserverUnavailable(
      `MATRIX_HOMESERVER: ${homeserver} answered whoami with HTTP ${r.status}`,
      r.status,
    );
  }
  if (!r.ok || typeof body.user_id !== "string") {
    throw new ConfigError(
      "MATRIX_HOMESERVER",
      `unexpected answer to whoami (HTTP ${r.status}): is ${homeserver} a Matrix homeserver?`,
    );
  }
  if (typeof body.device_id !== "string") {
    throw new ConfigError(
      "TIBET_NC_ACCESS_TOKEN",
      "the token has no device; create one with `tibet-nc login`",
    );
  }
  return { userId: body.user_id, deviceId: body.device_id };
}

/**
 * Records which device the state dir belongs to, and refuses a token for another
 * device: mixing them would make the crypto store's keys lie about who we are.
 */
export function bindDevice(stateDir: string, who: WhoAmI): void {
  const path = `${stateDir}/device.json`;
  try {
    const saved = JSON.parse(Deno.readTextFileSync(path)) as WhoAmI;
    if (saved.userId !== who.userId || saved.deviceId !== who.deviceId) {
      throw new ConfigError(
        "TIBET_NC_ACCESS_TOKEN",
        `it is for ${who.userId} device ${who.deviceId}, but ${stateDir} holds the keys of ${saved.userId} device ${saved.deviceId}; use that device's token or a new state dir`,
      );
    }
    return;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  Deno.writeTextFileSync(path, JSON.stringify(who) + "\n", { mode: 0o600 });
}

/**
 * Which devices the agent trusts: only those their owner cross-signed, unless
 * TIBET_NC_ALLOW_UNSIGNED_DEVICES gives that up.
 */
export function isolationMode(config: Config): DeviceIsolationMode {
  return config.allowUnsignedDevices
    ? new AllDevicesIsolationMode(true) // still refuse identity changes of verified users
    : new OnlySignedDevicesIsolationMode();
}

/**
 * Creates a client for `who` and starts rust crypto on the durable `store`.
 * Neither syncs nor touches cross-signing (`login` does that with a password).
 */
export async function startCrypto(
  homeserver: string,
  accessToken: string,
  who: WhoAmI,
  store: DurableStore,
  logger: Logger,
  extra: Partial<ICreateClientOpts> = {},
): Promise<MatrixClient> {
  // The rust crypto opens its IndexedDB through these globals and checks the
  // objects it gets against the IDB* constructors (wasm-bindgen's dyn_into).
  const { default: _unused, indexedDB: _global, ...classes } = fakeIdb;
  Object.assign(globalThis, classes, { indexedDB: store.factory });
  const client = createClient({
    baseUrl: homeserver,
    accessToken,
    userId: who.userId,
    deviceId: who.deviceId,
    logger,
    fetchFn: flushingFetch(store),
    scheduler: unqueuedScheduler(),
    ...extra,
  });
  await client.initRustCrypto();
  return client;
}

/**
 * A scheduler that queues nothing. The SDK's default sends a room's messages one
 * at a time, so replies to commands from several operators waited in one line
 * (200 commands: p95 latency 14.6 s, 1.3 s without the queue). A command's own
 * reply and edits stay in order because the handler awaits each, and failed
 * sends are retried by the caller (`retry.ts`).
 */
export function unqueuedScheduler(): MatrixScheduler {
  return new MatrixScheduler(MatrixScheduler.RETRY_BACKOFF_RATELIMIT, () => null);
}

/**
 * `fetch`, after making the crypto store durable: whatever the homeserver learns
 * from a request (a one-time key, a to-device ack, a ciphertext) is then backed by
 * the store on disk, and a crash before it loses only what nobody saw.
 */
export function flushingFetch(store: DurableStore): typeof fetch {
  return (input, init) => {
    store.flush();
    return fetch(input, init);
  };
}

/**
 * Events per room one sync may carry before it is "limited": the SDK then skips
 * the gap, and commands in it would never be seen. Synapse's default is 10,
 * which an operator typing while the agent is paused or reconnecting passes.
 */
export const SYNC_PAGE_EVENTS = 200;

/**
 * The sync filter of one agent process: a timeline page of
 * {@linkcode SYNC_PAGE_EVENTS}, lazy-loaded members and a marker unique to this
 * start. Synapse caches /sync answers for two minutes by default, keyed on the
 * user, device, since token and filter, and the agent keeps no sync token: a
 * restart within those minutes was handed the previous process's first answers,
 * with their old one-time-key count (so the crypto uploaded 50 more keys at every
 * start, and the homeserver kept handing out keys the agent no longer holds) and
 * to-device messages already handled. The marker makes every process's requests
 * its own.
 */
export function syncFilter(userId: string): Filter {
  const filter = new Filter(userId);
  filter.setDefinition({
    room: { state: { lazy_load_members: true }, timeline: { limit: SYNC_PAGE_EVENTS } },
    account_data: { not_types: [`org.tibet-nc.start.${crypto.randomUUID()}`] },
  });
  return filter;
}

/**
 * Starts crypto for the agent with its device isolation mode. Does not start
 * syncing; call `ensureCrossSigning` once the first sync is done.
 */
export async function connect(
  config: Config,
  who: WhoAmI,
  store: DurableStore,
  verbose = false,
): Promise<MatrixClient> {
  if (!verbose) quietSdkGlobalLogger();
  const client = await startCrypto(
    config.homeserver,
    config.accessToken,
    who,
    store,
    quietLogger("matrix", verbose),
  );
  client.getCrypto()!.setDeviceIsolationMode(isolationMode(config));
  // No sync token is kept, so the first sync cannot say whose devices or
  // identities changed while the agent was down: query them all again.
  await (client.getCrypto() as unknown as CryptoBackend).markAllTrackedUsersAsDirty();
  return client;
}

/**
 * The device isolation mode only encrypts when our own account has cross-signing,
 * and operators can only verify the agent through it. Set it up on first start;
 * homeservers that demand a password for this (user-interactive auth) need
 * `tibet-nc login` instead. Called after the first sync: before it, each read of
 * our own identity waits a second for a /keys/query only the sync loop sends.
 */
export async function ensureCrossSigning(client: MatrixClient): Promise<void> {
  const crypto = client.getCrypto()!;
  if (await crypto.isCrossSigningReady()) return;
  try {
    await crypto.bootstrapCrossSigning({
      authUploadDeviceSigningKeys: async (makeRequest) => {
        await makeRequest(null);
      },
    });
  } catch (e) {
    throw new Error(
      `cannot set up cross-signing for ${client.getUserId()}: ${
        (e as Error).message
      }; run \`tibet-nc login\` to set it up with the account password`,
    );
  }
}
