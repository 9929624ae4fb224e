/**
 * Canonical JSON: one byte-exact text per value, so hashes over JSON are
 * reproducible by any implementation. This is RFC 8785 (JCS) for the values the
 * audit log holds: object keys sorted by UTF-16 code units at every level, no
 * whitespace, strings and numbers written as ECMAScript `JSON.stringify` writes
 * them. In JavaScript that is `JSON.stringify` with sorted keys.
 * @module
 */

/** A JSON value. */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue | undefined };

/** A JSON object. Members whose value is `undefined` are left out, as JSON.stringify does. */
export type JsonObject = { [key: string]: JsonValue | undefined };

/**
 * Canonical JSON text of `value`. Throws on a non-finite number, which has no
 * JSON form and would otherwise be written as `null` and hash the same as it.
 */
export function canonicalJson(value: JsonValue): string {
  if (value === null || typeof value !== "object") {
    if (typeof value === "number" && !Number.isFinite(value)) {
      throw new TypeError(`canonical JSON cannot hold the number ${value}`);
    }
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const parts: string[] = [];
  for (const key of Object.keys(value).sort()) {
    const member = value[key];
    if (member !== undefined) parts.push(`${JSON.stringify(key)}:${canonicalJson(member)}`);
  }
  return `{${parts.join(",")}}`;
}
