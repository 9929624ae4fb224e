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
  // A parsed canonical line (what `audit verify` checks) is already in order, and
  // then the native JSON.stringify writes the same text several times faster.
  if (inCanonicalOrder(value)) return JSON.stringify(value);
  return canonicalText(value);
}

function canonicalText(value: JsonValue): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (value === null || typeof value !== "object") {
    if (typeof value === "number" && !Number.isFinite(value)) {
      throw new TypeError(`canonical JSON cannot hold the number ${value}`);
    }
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) {
    let out = "[";
    for (let i = 0; i < value.length; i++) out += (i === 0 ? "" : ",") + canonicalText(value[i]);
    return out + "]";
  }
  return canonicalObject(value, null);
}

/** Canonical JSON text of `value` without its member `omit`, as if it were not there. */
export function canonicalJsonWithout(value: JsonObject, omit: string): string {
  return canonicalObject(value, omit);
}

// Hand-rolled rather than JSON.stringify with a replacer: verification runs this
// twice per record, and a replacer copies every object to reorder its keys.
function canonicalObject(value: JsonObject, omit: string | null): string {
  const keys = Object.keys(value);
  // Parsed canonical text is already in order; sort only when it is not.
  for (let i = 1; i < keys.length; i++) {
    if (keys[i - 1] > keys[i]) {
      keys.sort();
      break;
    }
  }
  let out = "{";
  for (const key of keys) {
    const member = value[key];
    if (member === undefined || key === omit) continue;
    out += (out.length === 1 ? "" : ",") + JSON.stringify(key) + ":" + canonicalText(member);
  }
  return out + "}";
}

/**
 * True when JSON.stringify(value) is already its canonical text: plain objects
 * and arrays only (JSON.stringify would call a toJSON), keys in UTF-16 order (it
 * writes them in Object.keys order), no undefined (it would write an array's as
 * null) and finite numbers only (it would write null for those too).
 */
function inCanonicalOrder(value: JsonValue | undefined): boolean {
  if (typeof value === "string" || typeof value === "boolean" || value === null) return true;
  if (typeof value === "number") return Number.isFinite(value);
  if (typeof value !== "object") return false;
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype) return false;
    for (let i = 0; i < value.length; i++) if (!inCanonicalOrder(value[i])) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  let prev: string | null = null;
  for (const key in value) {
    if (!Object.hasOwn(value, key)) return false;
    if (prev !== null && prev >= key) return false;
    if (!inCanonicalOrder(value[key])) return false;
    prev = key;
  }
  return true;
}
