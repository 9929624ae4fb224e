/**
 * The host's Ed25519 key for signing TIBET tokens, generated at first start.
 *
 * File format: a JSON Web Key (RFC 8037), `{"kty":"OKP","crv":"Ed25519","d":…,"x":…}`
 * with `d` the 32-byte private seed and `x` the 32-byte public key, both base64url.
 * JWK rather than PKCS8 because it is plain text an operator can inspect, and it
 * carries the public key, which Web Crypto cannot derive from a private key.
 * The file is created with mode 0600 and a key file that other users can access
 * is refused: whoever reads it can forge tokens.
 * @module
 */

import { errorCode, errorMessage, SigningKeyError } from "./errors.ts";
import { syncDirOf, writeAllSync } from "./durable_file.ts";
import { toHex } from "./hash.ts";
import type { SigningKey } from "./token.ts";

export type { SigningKey } from "./token.ts";

/** Suggested name of the key file inside the state directory. */
export const SIGNING_KEY_FILE = "signing_key.jwk";

/**
 * Loads the signing key at `path`, or creates it (mode 0600) when the file does
 * not exist. Throws {@linkcode SigningKeyError} when the file is accessible by
 * group or others, is not a valid Ed25519 JWK, or its public half does not belong
 * to its private half. The returned private key is not extractable.
 */
export async function loadOrCreateSigningKey(path: string): Promise<SigningKey> {
  let text = readKeyFile(path);
  if (text === null) {
    await createKeyFile(path);
    text = readKeyFile(path);
    if (text === null) {
      throw new SigningKeyError(`signing key ${path} vanished right after creation`);
    }
  }
  return await importKeyText(path, text);
}

/** Reads the key file through one descriptor, so the mode checked is the file read. */
function readKeyFile(path: string): string | null {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new SigningKeyError(`cannot open signing key ${path}: ${errorMessage(e)}`, { cause: e });
  }
  try {
    const info = file.statSync();
    if (!info.isFile) throw new SigningKeyError(`signing key ${path} is not a regular file`);
    const mode = (info.mode ?? 0) & 0o777;
    if (mode & 0o077) {
      throw new SigningKeyError(
        `signing key ${path} is accessible by group/other users (mode ${mode.toString(8)}); ` +
          `anyone who can read it can forge TIBET tokens. Fix: chmod 600 ${path} ` +
          `(and replace the key if others may already have read it)`,
      );
    }
    const bytes = new Uint8Array(info.size);
    let read = 0;
    while (read < bytes.length) {
      const n = file.readSync(bytes.subarray(read));
      if (n === null) break;
      read += n;
    }
    return new TextDecoder().decode(bytes.subarray(0, read));
  } finally {
    file.close();
  }
}

/**
 * Writes a fresh key to a temporary file, fsyncs it, then hard-links it into place:
 * a crash never leaves a half-written key, and of two processes starting at once
 * the second keeps the first one's key instead of overwriting it.
 */
async function createKeyFile(path: string): Promise<void> {
  const pair = await crypto.subtle.generateKey("Ed25519", true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const jwk = await crypto.subtle.exportKey("jwk", pair.privateKey);
  const text = JSON.stringify({ kty: "OKP", crv: "Ed25519", d: jwk.d, x: jwk.x }) + "\n";
  const tmp = `${path}.tmp-${crypto.randomUUID()}`;
  try {
    const file = Deno.openSync(tmp, { write: true, createNew: true, mode: 0o600 });
    try {
      writeAllSync(file, new TextEncoder().encode(text));
      file.syncSync();
    } finally {
      file.close();
    }
    try {
      Deno.linkSync(tmp, path);
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
    Deno.removeSync(tmp);
    syncDirOf(path);
  } catch (e) {
    try {
      Deno.removeSync(tmp);
    } catch { /* it was never created, or is already gone */ }
    const hint = errorCode(e) === "ENOENT"
      ? "create the directory first (it is the state directory, TIBET_NC_STATE_DIR)"
      : "make that directory writable by the tibet-nc service user";
    throw new SigningKeyError(`cannot create signing key ${path}: ${errorMessage(e)}; ${hint}`, {
      cause: e,
    });
  }
}

function base64urlBytes(text: unknown): Uint8Array<ArrayBuffer> | null {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text)) return null;
  try {
    const bin = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

async function importKeyText(path: string, text: string): Promise<SigningKey> {
  const fix = `restore ${path} from backup, or move it aside to have a new key created ` +
    `(earlier tokens then verify only against the old public key)`;
  let jwk: Record<string, unknown>;
  try {
    jwk = JSON.parse(text);
  } catch {
    throw new SigningKeyError(`signing key ${path} is not JSON; ${fix}`);
  }
  const d = base64urlBytes(jwk?.d);
  const x = base64urlBytes(jwk?.x);
  if (jwk?.kty !== "OKP" || jwk?.crv !== "Ed25519" || d?.length !== 32 || x?.length !== 32) {
    throw new SigningKeyError(`signing key ${path} is not an Ed25519 JWK with d and x; ${fix}`);
  }
  let privateKey: CryptoKey;
  let publicKey: CryptoKey;
  try {
    privateKey = await crypto.subtle.importKey(
      "jwk",
      { kty: "OKP", crv: "Ed25519", d: jwk.d as string, x: jwk.x as string },
      "Ed25519",
      false,
      ["sign"],
    );
    publicKey = await crypto.subtle.importKey("raw", x, "Ed25519", true, ["verify"]);
  } catch (e) {
    throw new SigningKeyError(
      `signing key ${path} cannot be imported (${errorMessage(e)}); ${fix}`,
    );
  }
  // A JWK whose x was edited would sign fine and then fail every verification.
  const probe = new TextEncoder().encode("tibet-nc signing key self-test");
  const sig = await crypto.subtle.sign("Ed25519", privateKey, probe);
  if (!await crypto.subtle.verify("Ed25519", publicKey, sig, probe)) {
    throw new SigningKeyError(
      `signing key ${path}: public key x does not match private key d; ${fix}`,
    );
  }
  return { privateKey, publicKeyHex: toHex(x) };
}
