/**
 * The L4 chain: a hash chain over the audit records of one host.
 *
 * The original tibet-nc chained per session:
 * `genesis = SHA-256("genesis_tibet_nc_" + session_id)` and per command
 * `l4 = SHA-256(l4 + ":" + SHA-256(command) + ":" + timestamp + ":" + sender)`
 * (hex digests, UTF-8 text). {@linkcode originalL4Step} keeps that formula.
 *
 * The durable chain of this project runs over one host's whole life: its
 * `session_id` is the host's chain id (a UUID v4 made at first start and written
 * into every audit record as `chain_id`), and each step covers the whole record,
 * so that editing any byte of any field breaks it:
 *
 * ```text
 * l4_0 = hex(SHA-256(UTF-8("genesis_tibet_nc_" + chain_id)))
 * record_hash_n = hex(SHA-256(UTF-8(canonical_json(record_n without its "l4" member))))
 * l4_n = hex(SHA-256(UTF-8(l4_{n-1} + ":" + record_hash_n)))
 * ```
 *
 * `canonical_json` is RFC 8785 (JCS): keys sorted by UTF-16 code units, no
 * whitespace, ECMAScript number and string forms; see `canonical_json.ts`. The
 * record being hashed contains `l4_prev` = l4_{n-1}, so the chain is also stated
 * in each record. All hex is lowercase.
 * @module
 */

import { canonicalJsonWithout, type JsonObject } from "./canonical_json.ts";
import { sha256Hex } from "./hash.ts";

/** Genesis value of a chain: hex SHA-256 of `"genesis_tibet_nc_" + chainId`. */
export function genesisL4(chainId: string): string {
  return sha256Hex(`genesis_tibet_nc_${chainId}`);
}

/**
 * One step of the original (per-session, command-only) chain:
 * `SHA-256(`${l4}:${SHA-256(command)}:${timestamp}:${sender}`)`, hex.
 */
export function originalL4Step(
  l4: string,
  command: string,
  timestamp: string,
  sender: string,
): string {
  return sha256Hex(`${l4}:${sha256Hex(command)}:${timestamp}:${sender}`);
}

/** Hex SHA-256 of the canonical JSON of `record` without its `l4` member. */
export function recordHash(record: JsonObject): string {
  return sha256Hex(canonicalJsonWithout(record, "l4"));
}

/**
 * {@linkcode recordHash} of a record read from `line`, its canonical JSON (the
 * caller has checked that). Sorted keys put `chain_id` first and `l4` second in
 * a log record, so the text to hash is the line without the `,"l4":…` member:
 * cut out of the line instead of written anew.
 */
export function recordHashOfLine(line: string, record: JsonObject): string {
  const { chain_id, l4 } = record;
  if (typeof chain_id !== "string" || typeof l4 !== "string") return recordHash(record);
  const first = `{"chain_id":${JSON.stringify(chain_id)}`;
  const l4Member = `,"l4":${JSON.stringify(l4)}`;
  if (!line.startsWith(l4Member, first.length) || !line.startsWith(first)) {
    return recordHash(record);
  }
  return sha256Hex(first + line.slice(first.length + l4Member.length));
}

/** `l4_n = hex SHA-256(l4_{n-1} + ":" + record_hash_n)`. */
export function nextL4(l4Prev: string, recordHashHex: string): string {
  return sha256Hex(`${l4Prev}:${recordHashHex}`);
}

/** The l4 value `record` must carry, computed from its own `l4_prev` and content. */
export function recordL4(record: JsonObject & { l4_prev: string }): string {
  return nextL4(record.l4_prev, recordHash(record));
}
