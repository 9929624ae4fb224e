/**
 * One audit record: a line of the audit log, holding a signed TIBET token and its
 * place in the L4 chain.
 *
 * A line is the canonical JSON (RFC 8785) of
 * `{chain_id, l4, l4_prev, [parent_seq], seq, token, v}` followed by "\n":
 * - `v`: format version, 1.
 * - `seq`: 1 for the first record of the log, then +1 per record.
 * - `chain_id`: the host's chain id (UUID v4), the same in every record.
 * - `l4_prev`: l4 of the previous record; for seq 1 the genesis of `chain_id`.
 * - `l4`: the chain value over this record (see `chain.ts`).
 * - `parent_seq`: only on a result record: the seq of the command it belongs to.
 * - `token`: the TIBET token. Its `parent_id` is the token id of record
 *   `parent_seq` when that is present, else of the previous record (null for
 *   seq 1). Its `eromheen` JSON always holds `seq` and `l4_prev`, so the signature
 *   also commits to the token's place in the chain: rewriting history needs the key.
 * @module
 */

import { canonicalJson, type JsonObject } from "./canonical_json.ts";
import { nextL4, recordHashOfLine, recordL4 } from "./chain.ts";
import { isHex } from "./hash.ts";
import {
  createToken,
  type SigningKey,
  type TibetToken,
  tokenShapeError,
  verifyShapedToken,
} from "./token.ts";

/** A parsed audit record; see the module documentation for each field. */
export interface AuditRecord {
  /** Format version. */
  v: 1;
  /** Position in the log, from 1. */
  seq: number;
  /** The host's chain id (UUID v4); its genesis starts the chain. */
  chain_id: string;
  /** The previous record's l4 (the genesis for seq 1). */
  l4_prev: string;
  /** This record's chain value. */
  l4: string;
  /** On result records: seq of the command record they belong to. */
  parent_seq?: number;
  /** The signed TIBET token. */
  token: TibetToken;
}

/** Where a chain stands: what the next record links to. */
export interface ChainHead {
  /** The host's chain id. */
  chainId: string;
  /** seq of the last record, 0 for an empty log. */
  seq: number;
  /** l4 of the last record, or the genesis for an empty log. */
  l4: string;
  /** Token id of the last record, null for an empty log. */
  tokenId: string | null;
}

/** Content of a new record; `erin` is stored exactly as given. */
export interface RecordInput {
  /** TIBET token_type, e.g. `nc.command.execute`. */
  token_type: string;
  /** Who acted, e.g. the Matrix user id. */
  actor: string;
  /** What is in it (already hashed, unless plaintext was chosen). */
  erin: string;
  /** References: event id, output hash, … */
  eraan: string[];
  /** Context; `seq` and `l4_prev` are added here and must not be set by the caller. */
  eromheen: JsonObject;
  /** Intent. */
  erachter: string;
  /** For a result: the record of the command it belongs to. */
  parent?: { seq: number; tokenId: string };
}

/** Result of parsing a line or checking a record; `reason` is for a sysadmin. */
export type RecordCheck<T> = { ok: true; value: T } | { ok: false; reason: string };

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const RECORD_KEYS = new Set(["v", "seq", "chain_id", "l4_prev", "l4", "parent_seq", "token"]);
const TOKEN_KEYS = new Set([
  "id",
  "timestamp",
  "token_type",
  "actor",
  "erin",
  "eraan",
  "eromheen",
  "erachter",
  "parent_id",
  "state",
  "signature",
  "signer_pubkey",
  "content_hash",
]);

/** True when `value` is a fresh-looking chain id (a lowercase UUID v4). */
export function isChainId(value: unknown): value is string {
  return typeof value === "string" && UUID_V4.test(value);
}

/** The JSON view of a record, for hashing. */
function asJson(record: AuditRecord): JsonObject & { l4_prev: string } {
  return record as unknown as JsonObject & { l4_prev: string };
}

/** The log line of `record`, without the newline. */
export function formatRecord(record: AuditRecord): string {
  return canonicalJson(asJson(record));
}

/** Builds and signs the record that follows `head`. */
export async function buildRecord(
  head: ChainHead,
  input: RecordInput,
  key: SigningKey,
): Promise<AuditRecord> {
  if ("seq" in input.eromheen || "l4_prev" in input.eromheen) {
    throw new TypeError("eromheen must not set seq or l4_prev: the audit log sets them");
  }
  const seq = head.seq + 1;
  const token = await createToken({
    token_type: input.token_type,
    actor: input.actor,
    erin: input.erin,
    eraan: input.eraan,
    eromheen: canonicalJson({ ...input.eromheen, seq, l4_prev: head.l4 }),
    erachter: input.erachter,
    parent_id: input.parent ? input.parent.tokenId : head.tokenId,
  }, key);
  const record: AuditRecord = {
    v: 1,
    seq,
    chain_id: head.chainId,
    l4_prev: head.l4,
    l4: "",
    parent_seq: input.parent?.seq,
    token,
  };
  if (record.parent_seq === undefined) delete record.parent_seq;
  record.l4 = recordL4(asJson(record));
  return record;
}

/**
 * Parses one log line (without its newline) and checks its form: JSON, the
 * record and token fields and their types, and that the line is exactly the
 * canonical JSON of what it holds. Says nothing yet about hashes or signatures.
 */
export function parseRecord(line: string): RecordCheck<AuditRecord> {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { ok: false, reason: "line is not valid JSON (truncated or edited)" };
  }
  const shape = recordShapeError(value);
  if (shape) return { ok: false, reason: shape };
  const record = value as AuditRecord;
  if (formatRecord(record) !== line) {
    return {
      ok: false,
      reason: "line is not in canonical form (spacing, key order or escapes were changed)",
    };
  }
  return { ok: true, value: record };
}

function recordShapeError(value: unknown): string | null {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return "line is not a JSON object";
  }
  const r = value as Record<string, unknown>;
  const extra = Object.keys(r).find((k) => !RECORD_KEYS.has(k));
  if (extra !== undefined) return `record has an unknown field ${JSON.stringify(extra)}`;
  if (r.v !== 1) return `record version ${JSON.stringify(r.v)} is not supported (expected 1)`;
  if (!Number.isSafeInteger(r.seq) || (r.seq as number) < 1) {
    return "record seq is not a positive integer";
  }
  if (!isChainId(r.chain_id)) return "record chain_id is not a UUID v4";
  if (!isHex(r.l4_prev, 32)) return "record l4_prev is not 64 lowercase hex digits";
  if (!isHex(r.l4, 32)) return "record l4 is not 64 lowercase hex digits";
  if (
    "parent_seq" in r &&
    (!Number.isSafeInteger(r.parent_seq) || (r.parent_seq as number) < 1 ||
      (r.parent_seq as number) >= (r.seq as number))
  ) {
    return "record parent_seq is not the seq of an earlier record";
  }
  const tokenError = tokenShapeError(r.token);
  if (tokenError) return tokenError;
  const t = r.token as Record<string, unknown>;
  const extraTokenKey = Object.keys(t).find((k) => !TOKEN_KEYS.has(k));
  if (extraTokenKey !== undefined) {
    return `token has an unknown field ${JSON.stringify(extraTokenKey)}`;
  }
  if (!UUID_V4.test(t.id as string)) return "token id is not a UUID v4";
  if (!RFC3339.test(t.timestamp as string)) return "token timestamp is not RFC 3339";
  if (t.state !== "Created") return 'token state is not "Created"';
  return null;
}

/**
 * Checks what a record proves about itself: its l4 matches its content, its
 * token's eromheen states its seq and l4_prev, and the token's content_hash and
 * signature are valid. Links to other records are the caller's part. `line`,
 * when given, is the line {@linkcode parseRecord} accepted the record from.
 */
export function checkRecordContent(record: AuditRecord, line?: string): string | null {
  // A line that parseRecord accepted has a token of the right shape already.
  if (line === undefined) {
    const shape = tokenShapeError(record.token);
    if (shape) return shape;
  }
  const token = verifyShapedToken(record.token);
  const l4 = line === undefined
    ? recordL4(asJson(record))
    : nextL4(record.l4_prev, recordHashOfLine(line, asJson(record)));
  // The most specific reason first: an edited token also changes l4.
  if (!token.ok) return token.reason;
  let context: unknown;
  try {
    context = JSON.parse(record.token.eromheen);
  } catch {
    return "token eromheen is not JSON";
  }
  const c = context as Record<string, unknown> | null;
  if (typeof c !== "object" || c === null || c.seq !== record.seq || c.l4_prev !== record.l4_prev) {
    return "token eromheen does not state this record's seq and l4_prev";
  }
  return l4 === record.l4 ? null : "l4 does not match the record's content (a field was edited)";
}
