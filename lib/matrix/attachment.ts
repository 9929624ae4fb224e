/**
 * Matrix encrypted attachments (client-server spec, "Sending encrypted
 * attachments", `EncryptedFile` v2): AES-256-CTR with a random key and a 128-bit
 * counter block whose low 64 bits start at zero, and the SHA-256 of the
 * ciphertext. Streamed with `node:crypto` rather than `matrix-encrypt-attachment`,
 * which takes and returns the whole file as one buffer: a 100 MB `get` must
 * not hold 100 MB in the agent. The tests check both against that library.
 * @module
 */

import { Buffer } from "node:buffer";
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { FileError } from "../files/request.ts";

/** The `file` of an encrypted `m.file` event. */
export interface EncryptedFile {
  url: string;
  key: { kty: "oct"; key_ops: string[]; alg: "A256CTR"; k: string; ext: true };
  iv: string;
  hashes: { sha256: string };
  v: "v2";
}

/** A Node Buffer as a plain Uint8Array over the same memory (no copy). */
const view = (b: Uint8Array) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64").replace(/=+$/, "");
const fromB64 = (s: string) => new Uint8Array(Buffer.from(s, "base64"));

/** An encryption in progress: pipe plaintext through `stream`; `file` once it has ended. */
export interface Encryption {
  stream: TransformStream<Uint8Array, Uint8Array>;
  /** The `EncryptedFile` for the uploaded ciphertext at `url`; call after the stream ended. */
  file(url: string): EncryptedFile;
}

/** Starts encrypting one attachment under a fresh key. */
export function encryptAttachment(): Encryption {
  const key = randomBytes(32);
  const iv = new Uint8Array(16);
  iv.set(randomBytes(8)); // low 64 bits zero: the counter cannot wrap (spec)
  const cipher = createCipheriv("aes-256-ctr", key, iv);
  const hash = createHash("sha256");
  let digest: string | null = null;
  const stream = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, c) {
      const out = view(cipher.update(chunk));
      hash.update(out);
      c.enqueue(out);
    },
    flush(c) {
      const rest = view(cipher.final());
      if (rest.length > 0) {
        hash.update(rest);
        c.enqueue(rest);
      }
      digest = b64(hash.digest());
    },
  });
  return {
    stream,
    file(url) {
      if (digest === null) throw new Error("the attachment is not fully encrypted yet");
      return {
        url,
        key: {
          kty: "oct",
          key_ops: ["encrypt", "decrypt"],
          alg: "A256CTR",
          k: Buffer.from(key).toString("base64url"),
          ext: true,
        },
        iv: b64(iv),
        hashes: { sha256: digest },
        v: "v2",
      };
    },
  };
}

/** Why an event's `file` is not an attachment this agent can decrypt, or null. */
export function badEncryptedFile(f: unknown): string | null {
  if (typeof f !== "object" || f === null) return "the attachment is not encrypted";
  const file = f as Record<string, unknown>;
  const key = file.key as Record<string, unknown> | undefined;
  if (typeof file.url !== "string" || !file.url.startsWith("mxc://")) return "no mxc:// url";
  if (file.v !== "v2") return `encrypted-attachment version ${String(file.v)} (v2 is supported)`;
  if (key?.kty !== "oct" || key.alg !== "A256CTR" || typeof key.k !== "string") {
    return "the key is not an AES-256-CTR JSON web key";
  }
  if (Buffer.from(key.k, "base64url").length !== 32) return "the key is not 256 bits";
  if (typeof file.iv !== "string" || fromB64(file.iv).length !== 16) return "bad counter block";
  const hashes = file.hashes as Record<string, unknown> | undefined;
  if (typeof hashes?.sha256 !== "string") return "no SHA-256 of the ciphertext";
  return null;
}

/**
 * Decrypts ciphertext streamed through the result; it errors at the end when
 * the ciphertext's SHA-256 is not the one in `file` (a tampered or truncated
 * upload), so a consumer must not keep what it got before that.
 */
export function decryptAttachment(file: EncryptedFile): TransformStream<Uint8Array, Uint8Array> {
  const bad = badEncryptedFile(file);
  if (bad) throw new Error(bad);
  const decipher = createDecipheriv(
    "aes-256-ctr",
    Buffer.from(file.key.k, "base64url"),
    fromB64(file.iv),
  );
  const hash = createHash("sha256");
  return new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, c) {
      hash.update(chunk);
      c.enqueue(view(decipher.update(chunk)));
    },
    flush(c) {
      const rest = view(decipher.final());
      if (rest.length > 0) c.enqueue(rest);
      if (b64(hash.digest()) !== file.hashes.sha256.replace(/=+$/, "")) {
        throw new FileError(
          "deny.file.hash",
          "the attachment's SHA-256 does not match: it was changed or cut short; nothing was kept",
        );
      }
    },
  });
}
