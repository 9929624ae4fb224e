/**
 * SHA-256 and hex helpers shared by the audit modules. Everything hashes UTF-8
 * bytes, so a string and its encoding always give the same digest.
 *
 * Hashing is synchronous (`node:crypto`, built into Deno): WebCrypto's digest is
 * a promise handed to a thread pool, about six times slower for the short texts
 * of an audit record, and `audit verify` takes three digests per record.
 * @module
 */

import { createHash } from "node:crypto";

const encoder = new TextEncoder();
const HEX_DIGITS = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** UTF-8 bytes of `text`. */
export function utf8(text: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(text);
}

// Strings go to `update` as they are: it encodes UTF-8 itself (lone surrogates
// as U+FFFD, like TextEncoder), about twice as fast as encoding first.

/** SHA-256 of `data` (a string is hashed as its UTF-8 bytes). */
export function sha256(data: string | Uint8Array): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(createHash("sha256").update(data).digest());
}

/** Lowercase hex SHA-256 of `data` (a string is hashed as its UTF-8 bytes). */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Lowercase hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += HEX_DIGITS[bytes[i]];
  return out;
}

/**
 * True when `text` is lowercase hex of exactly `bytes` bytes. Uppercase is refused
 * on purpose: two spellings of one value would let a file change without any
 * hash over its text noticing.
 */
export function isHex(text: unknown, bytes: number): text is string {
  return typeof text === "string" && text.length === bytes * 2 && /^[0-9a-f]*$/.test(text);
}

/** Bytes of lowercase hex `text`; throws on odd length or a non-hex digit. */
export function fromHex(text: string): Uint8Array<ArrayBuffer> {
  if (text.length % 2 !== 0 || !/^[0-9a-f]*$/.test(text)) {
    throw new TypeError(`not lowercase hex: ${JSON.stringify(text.slice(0, 20))}`);
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = (nibble(text.charCodeAt(2 * i)) << 4) | nibble(text.charCodeAt(2 * i + 1));
  }
  return out;
}

/** Value of one checked lowercase hex digit, from its char code. */
function nibble(code: number): number {
  return code <= 0x39 ? code - 0x30 : code - 0x57;
}
