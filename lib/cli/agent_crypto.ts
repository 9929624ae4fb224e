/**
 * The agent's crypto identity for `tibet-nc login`: starts rust crypto on the
 * durable store without the agent's automatic cross-signing set-up (which cannot
 * answer a password prompt), and reads back the keys an operator compares when
 * verifying the agent.
 * @module
 */

import type { MatrixClient } from "matrix-js-sdk";
import type { Logger } from "matrix-js-sdk/lib/logger.js";
import { startCrypto as startClientCrypto, type WhoAmI } from "../matrix/client.ts";
import type { DurableStore } from "../store/durable_idb.ts";
import { quietLogger, quietSdkGlobalLogger } from "../matrix/logger.ts";

/** Starts rust crypto on `store` for a one-shot command: errors only in the log. */
export async function startCrypto(
  homeserver: string,
  accessToken: string,
  who: WhoAmI,
  store: DurableStore,
): Promise<MatrixClient> {
  quietSdkGlobalLogger();
  return await startClientCrypto(
    homeserver,
    accessToken,
    who,
    store,
    errorsOnly(quietLogger("matrix")),
  );
}

/**
 * Creates a new cross-signing identity for the account and signs this device
 * with it, answering the homeserver's password challenge (user-interactive auth).
 */
export async function setUpCrossSigning(client: MatrixClient, password: string): Promise<void> {
  const crypto = client.getCrypto()!;
  await crypto.bootstrapCrossSigning({
    // A new device never holds the old private keys: a fresh identity is the only
    // way to sign it, and saying so keeps secret storage out of the way.
    setupNewCrossSigning: true,
    authUploadDeviceSigningKeys: async (makeRequest) => {
      await makeRequest({
        type: "m.login.password",
        identifier: { type: "m.id.user", user: client.getUserId()! },
        password,
      });
    },
  });
}

/** The device's Ed25519 key (unpadded base64): the "session key" clients show. */
export async function deviceEd25519(client: MatrixClient): Promise<string> {
  return (await client.getCrypto()!.getOwnDeviceKeys()).ed25519;
}

/**
 * The SDK warns about the normal steps of a first set-up (no secret storage, no
 * sync running); a one-shot command shows errors only.
 */
function errorsOnly(logger: Logger): Logger {
  return { ...logger, warn: () => {}, getChild: (ns: string) => errorsOnly(logger.getChild(ns)) };
}

/** Formats a base64 key in groups of four characters, as Element shows keys. */
export function groupsOfFour(key: string): string {
  return key.match(/.{1,4}/g)?.join(" ") ?? "";
}
