/**
 * Decides how the crypto store is protected at rest and checks that the configured
 * passphrase is the one it was created with, so a wrong passphrase gives a clear
 * error instead of an empty store (which would mean a new, unknown device).
 * @module
 */

import { type Cipher, cipherFromKey, deriveKey, randomSalt } from "./cipher.ts";

const CHECK = "tibet-nc crypto store v1";

interface KeyFile {
  v: 1;
  kdf: "scrypt-N32768-r8-p1";
  salt: string;
  check: string;
}

const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
const unb64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

function hasStoreFiles(dir: string): boolean {
  try {
    for (const e of Deno.readDirSync(dir)) if (/\.(snap|journal)$/.test(e.name)) return true;
  } catch { /* no dir yet */ }
  return false;
}

/**
 * Returns the cipher for the store in `dir`, or null for a plaintext store.
 * Creates the key check file on first use of a passphrase. Throws with an
 * actionable message when passphrase and store do not match.
 */
export function storeCipher(dir: string, passphrase: string | null): Cipher | null {
  const keyPath = `${dir}/store-key.json`;
  let existing: KeyFile | null = null;
  try {
    existing = JSON.parse(Deno.readTextFileSync(keyPath)) as KeyFile;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new Error(`cannot read ${keyPath}: ${(e as Error).message}`);
    }
  }
  if (!passphrase) {
    if (existing) {
      throw new Error(
        `the crypto store in ${dir} is encrypted: set TIBET_NC_STORE_PASSPHRASE (or TIBET_NC_STORE_KEY_FILE)`,
      );
    }
    return null;
  }
  if (!existing) {
    if (hasStoreFiles(dir)) {
      throw new Error(
        `the crypto store in ${dir} was created without a passphrase; unset TIBET_NC_STORE_PASSPHRASE or start with an empty state dir`,
      );
    }
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const salt = randomSalt();
    const cipher = cipherFromKey(deriveKey(passphrase, salt));
    const file: KeyFile = {
      v: 1,
      kdf: "scrypt-N32768-r8-p1",
      salt: b64(salt),
      check: b64(cipher.encrypt(new TextEncoder().encode(CHECK))),
    };
    Deno.writeTextFileSync(keyPath, JSON.stringify(file) + "\n", { mode: 0o600 });
    return cipher;
  }
  const cipher = cipherFromKey(deriveKey(passphrase, unb64(existing.salt)));
  try {
    const plain = new TextDecoder().decode(cipher.decrypt(unb64(existing.check)));
    if (plain !== CHECK) throw new Error("mismatch");
  } catch {
    throw new Error(
      `TIBET_NC_STORE_PASSPHRASE does not open the crypto store in ${dir} (wrong passphrase?)`,
    );
  }
  return cipher;
}
