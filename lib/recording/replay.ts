/**
 * Replay of one recording (`tibet-nc audit replay`): find the command's records
 * in the audit log, verify the log up to them (chain and signatures, the code
 * of `audit verify`), decrypt the recording with the operator's age identity
 * and check it against the SHA-256 the signed result record holds. Output is
 * given back only when every check passed.
 * @module
 */

import { Decrypter } from "age-encryption";
import { sha256Hex } from "../audit/hash.ts";
import { type AuditRecord, parseRecord } from "../audit/record.ts";
import { verifyLog } from "../audit/verify.ts";
import { recordingPath } from "./recorder.ts";

/** Exit code when nothing can be replayed: no such record, or no recording of it. */
export const EXIT_NO_RECORDING = 3;
/** Exit code when the identity cannot open the recording. */
export const EXIT_IDENTITY = 4;
/** Exit code when a record or the recording fails a check. */
export const EXIT_FAILED = 1;

/** What to replay. */
export interface ReplayRequest {
  /** The audit log's bytes. */
  log: Uint8Array;
  /** The recordings' directory (`<state dir>/recordings`). */
  recordingsDir: string;
  /** The command's execute record or its result record (the `#N` of the reply). */
  seq: number;
  /** The text of an age identity file (`AGE-SECRET-KEY-1…` lines, `#` comments). */
  identityText: string;
  /** Every record must be signed by this hex Ed25519 key. */
  pubkeyHex?: string;
}

/** The verdict: the recorded output, or why not and the exit code. */
export type ReplayResult =
  | {
    ok: true;
    output: Uint8Array;
    executeSeq: number;
    resultSeq: number;
    /** Only the start of the output was recorded (TIBET_NC_FULL_OUTPUT_BYTES). */
    truncated: boolean;
    /** Bytes the command printed. */
    totalBytes: number;
    sha256: string;
  }
  | Failure;

/** A replay that cannot go on. */
type Failure = { ok: false; code: number; reason: string };

const fail = (code: number, reason: string): Failure => ({ ok: false, code, reason });

/** Replays one recording; throws only for a missing or unreadable recording file's OS errors. */
export async function replayRecording(req: ReplayRequest): Promise<ReplayResult> {
  const identities = identityLines(req.identityText);
  if (identities.length === 0) {
    return fail(
      EXIT_IDENTITY,
      "the identity file holds no AGE-SECRET-KEY-1… line (make one with `age-keygen -o FILE`; " +
        "its public key is what TIBET_NC_RECORD_PUBKEY must be)",
    );
  }
  const decrypter = new Decrypter();
  try {
    for (const id of identities) decrypter.addIdentity(id);
  } catch (e) {
    return fail(EXIT_IDENTITY, `the identity file holds an invalid age identity: ${msg(e)}`);
  }

  const lines = lineSpans(req.log);
  const found = findCommand(req.log, lines, req.seq);
  if ("reason" in found) return found;
  const { execute, result } = found;

  // The records prove nothing until the chain up to them and their signatures hold.
  const prefix = req.log.subarray(0, lines[result.seq - 1].end);
  const verdict = await verifyLog(prefix, { pubkeyHex: req.pubkeyHex });
  if (!verdict.ok) {
    return fail(
      EXIT_FAILED,
      `the audit log fails verification at record #${verdict.firstBadSeq}: ${verdict.reason}; ` +
        `run \`tibet-nc audit verify\` for the whole log`,
    );
  }
  const context = JSON.parse(result.token.eromheen) as Record<string, unknown>;
  const which = `command #${execute.seq} (result #${result.seq})`;
  if (typeof context.recording_error === "string") {
    return fail(EXIT_NO_RECORDING, `${which} has no recording: ${context.recording_error}`);
  }
  const signedSha = context.recording_sha256;
  if (typeof signedSha !== "string") {
    return fail(
      EXIT_NO_RECORDING,
      `${which} has no recording: recording was off when it ran (TIBET_NC_RECORD_PUBKEY unset)` +
        (context.failed ? `, and it did not run (${context.failed})` : ""),
    );
  }
  const path = recordingPath(req.recordingsDir, execute.seq);
  let sealed: Uint8Array;
  try {
    sealed = await Deno.readFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    return fail(
      EXIT_NO_RECORDING,
      `${which} was recorded, but ${path} is gone: deleted by retention ` +
        `(TIBET_NC_RECORD_KEEP_DAYS, TIBET_NC_RECORD_MAX_BYTES) or removed by hand`,
    );
  }
  let output: Uint8Array;
  try {
    output = await decrypter.decrypt(sealed);
  } catch (e) {
    if (/no identity matched/.test(msg(e))) {
      return fail(
        EXIT_IDENTITY,
        `${path} is not encrypted to this identity: use the identity whose public key was ` +
          `TIBET_NC_RECORD_PUBKEY when the command ran (or the file's header was changed)`,
      );
    }
    return fail(EXIT_FAILED, `${path} does not decrypt: it was changed or damaged (${msg(e)})`);
  }
  const sha256 = sha256Hex(output);
  if (sha256 !== signedSha || output.length !== context.recording_bytes) {
    return fail(
      EXIT_FAILED,
      `${path} is not the recording the signed record #${result.seq} describes (SHA-256 ` +
        `${sha256.slice(0, 16)}…, ${output.length} bytes; signed ${signedSha.slice(0, 16)}…, ` +
        `${context.recording_bytes} bytes): it was replaced`,
    );
  }
  const truncated = context.recording_truncated === true;
  // Not truncated, the recording is the whole output: its hash is the output hash too.
  if (!truncated && sha256 !== result.token.erin) {
    return fail(
      EXIT_FAILED,
      `record #${result.seq} says the recording is the whole output, but the output's signed ` +
        `SHA-256 differs`,
    );
  }
  const totalBytes = typeof context.output_bytes === "number"
    ? context.output_bytes
    : output.length;
  return {
    ok: true,
    output,
    executeSeq: execute.seq,
    resultSeq: result.seq,
    truncated,
    totalBytes,
    sha256,
  };
}

/** The `AGE-SECRET-KEY-…` lines of an identity file (age-keygen writes `#` comments too). */
export function identityLines(text: string): string[] {
  return text.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
}

interface Span {
  start: number;
  end: number;
}

/** Byte ranges of the log's lines, each with its newline. */
function lineSpans(log: Uint8Array): Span[] {
  const spans: Span[] = [];
  let start = 0;
  while (start < log.length) {
    const nl = log.indexOf(0x0a, start);
    const end = nl < 0 ? log.length : nl + 1;
    spans.push({ start, end });
    start = end;
  }
  return spans;
}

/** The execute and result records of the command `seq` names, or why there are none. */
function findCommand(
  log: Uint8Array,
  lines: Span[],
  seq: number,
): { execute: AuditRecord; result: AuditRecord } | Failure {
  const decoder = new TextDecoder();
  const at = (n: number): AuditRecord | string => {
    const parsed = parseRecord(
      decoder.decode(log.subarray(lines[n - 1].start, lines[n - 1].end)).replace(/\n$/, ""),
    );
    if (!parsed.ok) return `record #${n} is unreadable: ${parsed.reason}`;
    if (parsed.value.seq !== n) return `line ${n} holds record #${parsed.value.seq}`;
    return parsed.value;
  };
  const broken = (why: string) =>
    fail(EXIT_FAILED, `${why}; run \`tibet-nc audit verify\` for the whole log`);
  if (seq > lines.length) {
    return fail(EXIT_NO_RECORDING, `no record #${seq}: the audit log ends at #${lines.length}`);
  }
  const named = at(seq);
  if (typeof named === "string") return broken(named);
  const type = named.token.token_type;
  if (type === "nc.command.result" && named.parent_seq !== undefined) {
    const execute = at(named.parent_seq);
    if (typeof execute === "string") return broken(execute);
    return { execute, result: named };
  }
  if (type !== "nc.command.execute") {
    return fail(
      EXIT_NO_RECORDING,
      `record #${seq} is a ${type} record, not a command that ran: only commands have ` +
        `recordings (give the #N of the command's reply)`,
    );
  }
  for (let n = seq + 1; n <= lines.length; n++) {
    const r = at(n);
    if (typeof r === "string") return broken(r);
    if (r.parent_seq === seq && r.token.token_type === "nc.command.result") {
      return { execute: named, result: r };
    }
  }
  return fail(
    EXIT_NO_RECORDING,
    `command #${seq} has no result record (still running, or the agent stopped during it), ` +
      `so nothing was recorded`,
  );
}

function msg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
