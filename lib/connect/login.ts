/**
 * The operator's device for `connect`: logged in once with the password (a
 * new device, saved in the state dir), then cross-signed by the operator's
 * identity, without which every agent refuses it (`deny.device`). Cross-signing
 * takes the identity's private keys from secret storage, opened with the
 * recovery key or its passphrase; emoji verification is in `sas.ts`.
 * @module
 */

import type { MatrixClient } from "matrix-js-sdk";
import { decodeRecoveryKey } from "matrix-js-sdk/lib/crypto-api/recovery-key.js";
import { deriveRecoveryKeyFromPassphrase } from "matrix-js-sdk/lib/crypto-api/key-passphrase.js";
import { passwordLogin } from "../matrix/account.ts";
import { promptSecret } from "../cli/password.ts";
import type { ConnectClient } from "./client.ts";
import { ConnectError, type ConnectOptions, EXIT } from "./options.ts";
import { readSession, type SavedSession, writeSession } from "./state.ts";
import type { LineReader } from "./stdin_lines.ts";

/** Reads a plain line from the terminal (stderr prompt); null at end of input. */
async function ask(question: string, stdin: LineReader): Promise<string | null> {
  await Deno.stderr.write(new TextEncoder().encode(question));
  return await stdin.next();
}

/**
 * The saved session, or a new one: logs in with the password (from a prompt
 * or `--password-stdin`) and saves it. Refuses a state dir of another account.
 */
export async function ensureSession(
  opts: ConnectOptions,
  stdin: LineReader,
): Promise<SavedSession> {
  const saved = readSession(opts.stateDir);
  if (saved) {
    const other = (opts.user && opts.user !== saved.userId) ||
      (opts.homeserver && opts.homeserver !== saved.homeserver);
    if (other) {
      throw new ConnectError(
        `${opts.stateDir} is the device ${saved.deviceId} of ${saved.userId} on ` +
          `${saved.homeserver}; for another account pass --state-dir`,
        EXIT.usage,
      );
    }
    return saved;
  }
  const tty = Deno.stdin.isTerminal();
  const homeserver = opts.homeserver ??
    (tty ? (await ask("homeserver URL: ", stdin))?.trim() : null);
  const user = opts.user ?? (tty ? (await ask("Matrix user id: ", stdin))?.trim() : null);
  if (!homeserver || !user) {
    throw new ConnectError(
      `not logged in yet (${opts.stateDir} holds no session): the first connect needs ` +
        `--homeserver URL and --user @you:server`,
      EXIT.usage,
    );
  }
  let password: string | null;
  if (opts.passwordStdin || !tty) {
    password = await stdin.next();
    if (password === null) {
      throw new ConnectError("stdin closed before the password line", EXIT.connection);
    }
  } else password = await promptSecret(`password for ${user}: `);
  if (!password) throw new ConnectError("no password given; nothing was changed", EXIT.usage);
  let s;
  try {
    s = await passwordLogin(homeserver.replace(/\/+$/, ""), user, password, opts.deviceName);
  } catch (e) {
    throw new ConnectError(`login failed: ${(e as Error).message}`, EXIT.connection);
  }
  const session = { homeserver: homeserver.replace(/\/+$/, ""), ...s };
  writeSession(opts.stateDir, session);
  console.error(`logged in as ${session.userId}: new device ${session.deviceId}`);
  return session;
}

/** True when this device is signed by its owner's cross-signing identity. */
export async function isCrossSigned(client: MatrixClient): Promise<boolean> {
  const status = await client.getCrypto()!.getDeviceVerificationStatus(
    client.getUserId()!,
    client.getDeviceId()!,
  );
  return status?.signedByOwner === true;
}

/** Why agents refuse this device, and the ways to fix it. */
export function notCrossSignedHelp(client: MatrixClient): string {
  return `this device (${client.getDeviceId()}) is not cross-signed by ${client.getUserId()}'s ` +
    `identity, so every agent refuses its commands (deny.device). Cross-sign it with your ` +
    `recovery key or secret storage passphrase (--recovery-key-stdin, or typed when asked), ` +
    `or by emoji from another of your sessions (--verify-emoji; in Element: Settings, Sessions, ` +
    `verify "${client.getDeviceId()}")`;
}

/**
 * Cross-signs this device with the identity's keys from secret storage, opened
 * with `secret` (a recovery key, or the passphrase it was made from).
 */
export async function crossSignWithRecovery(cc: ConnectClient, secret: string): Promise<void> {
  const { client } = cc;
  const found = await client.secretStorage.getKey();
  if (!found) {
    throw new ConnectError(
      `${client.getUserId()} has no secret storage, so no recovery key can cross-sign this ` +
        `device: set up recovery in another client (Element: Settings, Encryption) or use ` +
        `--verify-emoji`,
      EXIT.trust,
    );
  }
  const [keyId, info] = found;
  let key: Uint8Array<ArrayBuffer> | null = null;
  try {
    key = decodeRecoveryKey(secret.trim());
  } catch {
    if (info.passphrase) {
      key = await deriveRecoveryKeyFromPassphrase(
        secret,
        info.passphrase.salt,
        info.passphrase.iterations,
        info.passphrase.bits ?? 256,
      );
    }
  }
  if (key === null || !(await client.secretStorage.checkKey(key, info))) {
    throw new ConnectError(
      `that is not the recovery key${info.passphrase ? " or passphrase" : ""} of ` +
        `${client.getUserId()}'s secret storage; nothing was changed`,
      EXIT.trust,
    );
  }
  cc.secretKey.value = [keyId, key];
  const crypto = client.getCrypto()!;
  // The import checks the private keys against the public ones, which a new
  // device has not fetched yet.
  if (!(await crypto.userHasCrossSigningKeys(client.getUserId()!, true))) {
    throw new ConnectError(
      `${client.getUserId()} has no cross-signing identity to sign this device with`,
      EXIT.trust,
    );
  }
  try {
    // Imports the identity's private keys from secret storage and signs this device.
    await crypto.bootstrapCrossSigning({});
  } catch (e) {
    throw new ConnectError(
      `cannot cross-sign this device from secret storage: ${(e as Error).message}`,
      EXIT.trust,
    );
  } finally {
    cc.secretKey.value = null;
  }
  await untilCrossSigned(
    client,
    10_000,
    "secret storage opened, but the device is still not cross-signed: does secret storage " +
      "hold this identity's cross-signing keys?",
  );
}

/**
 * Waits until this device's cross-signature is seen (the homeserver has it and
 * the keys were fetched again); throws `failure` after `timeoutMs`.
 */
export async function untilCrossSigned(
  client: MatrixClient,
  timeoutMs: number,
  failure: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await isCrossSigned(client))) {
    if (Date.now() > deadline) throw new ConnectError(failure, EXIT.trust);
    await client.getCrypto()!.getUserDeviceInfo([client.getUserId()!], true);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Makes sure this device is cross-signed: with the recovery key from stdin,
 * by emoji, or (at a terminal) with a recovery key typed when asked.
 */
export async function ensureCrossSigned(
  cc: ConnectClient,
  opts: ConnectOptions,
  stdin: LineReader,
  sas: (cc: ConnectClient, stdin: LineReader) => Promise<void>,
): Promise<void> {
  if (await isCrossSigned(cc.client)) return;
  if (opts.recoveryKeyStdin) {
    const secret = await stdin.next();
    if (!secret) throw new ConnectError("no recovery key on stdin", EXIT.trust);
    await crossSignWithRecovery(cc, secret);
  } else if (opts.verifyEmoji) {
    await sas(cc, stdin);
  } else if (Deno.stdin.isTerminal() && opts.command === null) {
    console.error(notCrossSignedHelp(cc.client));
    const secret = await promptSecret("recovery key or passphrase (empty to stop): ");
    if (!secret) throw new ConnectError("not cross-signed; nothing was sent", EXIT.trust);
    await crossSignWithRecovery(cc, secret);
  } else {
    throw new ConnectError(notCrossSignedHelp(cc.client), EXIT.trust);
  }
  console.error(`this device (${cc.client.getDeviceId()}) is now cross-signed`);
}
