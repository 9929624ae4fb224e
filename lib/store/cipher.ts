/**
 * Encryption at rest for the crypto store: AES-256-GCM with a key derived from a
 * passphrase by scrypt. Synchronous (node:crypto) because records are written from
 * inside IndexedDB transaction callbacks, which cannot await.
 * @module
 */

import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from "node:crypto";

/** Encrypts and decrypts record payloads. */
export interface Cipher {
  /** Returns nonce | ciphertext | tag. */
  encrypt(plain: Uint8Array): Uint8Array;
  /** Inverse of `encrypt`; throws if the bytes were altered or the key is wrong. */
  decrypt(sealed: Uint8Array): Uint8Array;
}

const NONCE = 12;
const TAG = 16;

/** Builds a cipher from a 32-byte key. */
export function cipherFromKey(key: Uint8Array): Cipher {
  return {
    encrypt(plain) {
      const nonce = randomBytes(NONCE);
      const c = createCipheriv("aes-256-gcm", key, nonce);
      const body = c.update(plain);
      const fin = c.final();
      const tag = c.getAuthTag();
      const out = new Uint8Array(NONCE + body.length + fin.length + TAG);
      out.set(nonce, 0);
      out.set(body, NONCE);
      out.set(fin, NONCE + body.length);
      out.set(tag, NONCE + body.length + fin.length);
      return out;
    },
    decrypt(sealed) {
      if (sealed.length < NONCE + TAG) throw new Error("sealed record too short");
      const nonce = sealed.subarray(0, NONCE);
      const tag = sealed.subarray(sealed.length - TAG);
      const d = createDecipheriv("aes-256-gcm", key, nonce);
      d.setAuthTag(tag);
      const body = d.update(sealed.subarray(NONCE, sealed.length - TAG));
      const fin = d.final();
      const out = new Uint8Array(body.length + fin.length);
      out.set(body, 0);
      out.set(fin, body.length);
      return out;
    },
  };
}

/** Derives a 32-byte key from a passphrase and salt (scrypt, N=2^15, r=8, p=1). */
export function deriveKey(passphrase: string, salt: Uint8Array): Uint8Array {
  return new Uint8Array(
    scryptSync(passphrase, salt, 32, { N: 1 << 15, r: 8, p: 1, maxmem: 64 << 20 }),
  );
}

/** Random bytes for salts. */
export function randomSalt(): Uint8Array {
  return new Uint8Array(randomBytes(16));
}
