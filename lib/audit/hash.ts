/**
 * SHA-256 and hex helpers shared by the audit modules. Everything hashes UTF-8
 * bytes, so a string and its encoding always give the same digest.
 * @module
 */

const encoder = new TextEncoder();
const HEX_DIGITS = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** UTF-8 bytes of `text`. */
export function utf8(text: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(text);
}

/** SHA-256 of `data` (a string is hashed as its UTF-8 bytes). */
export async function sha256(
  data: string | Uint8Array<ArrayBuffer>,
): Promise<Uint8Array<ArrayBuffer>> {
  const bytes = typeof data === "string" ? utf8(data) : data;
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

/** Lowercase hex SHA-256 of `data` (a string is hashed as its UTF-8 bytes). */
export async function sha256Hex(data: string | Uint8Array<ArrayBuffer>): Promise<string> {
  return toHex(await sha256(data));
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
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}
