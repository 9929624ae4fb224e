/**
 * `tibet-nc audit`: verify the audit log, show its last records, or replay a
 * command's recorded output.
 *
 * ```text
 * tibet-nc audit verify [--log FILE | --env-file FILE] [--pubkey HEX] [--head HEX] [--count N] [--threads N]
 * tibet-nc audit show [-n N] [--log FILE | --env-file FILE]
 * tibet-nc audit replay SEQ --identity FILE [--log FILE | --env-file FILE] [--pubkey HEX]
 * ```
 * Exit codes: 0 ok, 1 verification failed or the log is unreadable, 2 usage
 * error, 3 nothing to replay, 4 the identity cannot decrypt.
 * @module
 */

import { AUDIT_LOG_FILE } from "../audit/log.ts";
import { readTail } from "../audit/tail.ts";
import type { AuditRecord } from "../audit/record.ts";
import type { TibetToken } from "../audit/token.ts";
import { verifyLogFile, type VerifyResult } from "../audit/verify.ts";
import { ConfigError } from "../config/config.ts";
import { parseArgs, UsageError } from "./args.ts";
import { cannotRead, logPath } from "./audit_paths.ts";
import { replay } from "./audit_replay.ts";

const USAGE = `Usage:
  tibet-nc audit verify [--log FILE | --env-file FILE] [--pubkey HEX] [--head HEX]
                        [--count N] [--threads N]
  tibet-nc audit show [-n N] [--log FILE | --env-file FILE]
  tibet-nc audit replay SEQ --identity FILE [--log FILE | --env-file FILE] [--pubkey HEX]

verify  checks every record of the audit log: sequence, L4 hash chain, token
        hashes and Ed25519 signatures, parent links. Prints
        "ok: N records, head <l4>" (exit 0) or "FAIL at record #SEQ: <reason>" (exit 1).
  --pubkey HEX  every token must be signed by this key (64 hex digits)
  --head HEX    an l4 seen earlier, e.g. in the Matrix room (at least 8 hex digits):
                it must still be in the log, which catches records deleted at the end
  --count N     the log must hold at least N records
  --threads N   check signatures in N threads (default: one per core, at most 8;
                logs under 1 MiB in one)
show    prints the last N records (default 10): seq, time, type, actor, verdict or
        exit code, short l4. It does not verify; run verify for that.
replay  prints the recorded output of command SEQ (the #N of its reply, or its
        execute record) to stdout, as it was printed, and a verdict to stderr.
        Needs TIBET_NC_RECORD_PUBKEY on the agent when the command ran. It
        verifies the log up to the command's records, decrypts
        recordings/<seq>.age next to the log and checks it against the SHA-256
        signed in the result record; nothing is printed unless all of it holds.
  --identity FILE  the age identity (AGE-SECRET-KEY-1…, as age-keygen writes it)
                   whose public key is TIBET_NC_RECORD_PUBKEY
  --log FILE    the audit log (default: $TIBET_NC_STATE_DIR/${AUDIT_LOG_FILE},
                state dir default /var/lib/tibet-nc)
  --env-file FILE  take TIBET_NC_STATE_DIR from the agent's env file

Exit codes: 0 ok, 1 verification failed or log unreadable (replay: a record or
the recording fails a check), 2 usage error, 3 nothing to replay (no such
command, recording off, or the recording deleted), 4 the identity cannot
decrypt the recording.`;

/** Runs `tibet-nc audit <args>` and returns the process exit code. */
export async function auditCommand(args: string[]): Promise<number> {
  try {
    if (args.includes("--help") || args.includes("-h")) {
      console.log(USAGE);
      return 0;
    }
    const [sub, ...rest] = args;
    const common = ["--log", "--env-file"];
    const parsed = parseArgs(rest, {
      values: sub === "show"
        ? ["-n", ...common]
        : sub === "replay"
        ? [...common, "--identity", "--pubkey"]
        : [...common, "--pubkey", "--head", "--count", "--threads"],
      positionals: sub === "replay" ? 1 : 0,
    });
    const opts = parsed.values;
    if (opts.has("--log") && opts.has("--env-file")) {
      throw new UsageError("give --log or --env-file, not both");
    }
    if (sub === "verify") return await verify(opts);
    if (sub === "show") return show(opts);
    if (sub === "replay") return await replay(parsed.positionals[0], opts);
    throw new UsageError(sub === undefined ? "missing subcommand" : `unknown subcommand ${sub}`);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`tibet-nc audit: ${e.message}`);
      return 1;
    }
    if (!(e instanceof UsageError)) throw e;
    console.error(`tibet-nc audit: ${e.message}\n\n${USAGE}`);
    return 2;
  }
}

async function verify(opts: Map<string, string>): Promise<number> {
  const pubkeyHex = opts.get("--pubkey")?.toLowerCase();
  if (pubkeyHex !== undefined && !/^[0-9a-f]{64}$/.test(pubkeyHex)) {
    throw new UsageError("--pubkey must be 64 hex digits (a raw Ed25519 public key)");
  }
  const expectHead = opts.get("--head")?.toLowerCase();
  if (expectHead !== undefined && !/^[0-9a-f]{8,64}$/.test(expectHead)) {
    throw new UsageError("--head must be an l4 value: 8 to 64 hex digits");
  }
  const countText = opts.get("--count");
  if (countText !== undefined && !/^\d+$/.test(countText)) {
    throw new UsageError("--count must be a non-negative integer");
  }
  const threadsText = opts.get("--threads");
  if (threadsText !== undefined && !/^[1-9]\d{0,2}$/.test(threadsText)) {
    throw new UsageError("--threads must be a whole number from 1 to 999");
  }
  const path = logPath(opts);
  let result: VerifyResult;
  try {
    result = await verifyLogFile(path, {
      pubkeyHex,
      expectHead,
      expectCount: countText === undefined ? undefined : Number(countText),
    }, { threads: threadsText === undefined ? undefined : Number(threadsText) });
  } catch (e) {
    return cannotRead(path, opts, e);
  }
  if (!result.ok) {
    console.log(`FAIL at record #${result.firstBadSeq}: ${result.reason}`);
    return 1;
  }
  console.log(`ok: ${result.count} records, head ${result.head ?? "none (empty log)"}`);
  if (result.pubkeyHex) {
    console.log(
      `signer ${result.pubkeyHex}${pubkeyHex ? "" : " (not pinned: pass --pubkey to check it)"}`,
    );
  }
  return 0;
}

function show(opts: Map<string, string>): number {
  const nText = opts.get("-n") ?? "10";
  if (!/^\d+$/.test(nText) || Number(nText) < 1) {
    throw new UsageError("-n must be a positive integer");
  }
  const path = logPath(opts);
  let lines: Uint8Array[];
  try {
    using file = Deno.openSync(path, { read: true });
    lines = readTail(file, Number(nText)).lines;
  } catch (e) {
    return cannotRead(path, opts, e);
  }
  const decoder = new TextDecoder();
  const rows = lines.map((line) => showRow(decoder.decode(line)));
  const widths = [0, 1, 2, 3, 4].map((c) => Math.max(0, ...rows.map((r) => r[c]?.length ?? 0)));
  for (const row of rows) {
    console.log(row.map((cell, c) => c < 5 ? cell.padEnd(widths[c]) : cell).join("  ").trimEnd());
  }
  if (rows.length === 0) console.log(`(${path} holds no records)`);
  return 0;
}

/** How `show` words the records of the privileged lane. */
const APPROVAL_WORDS: Record<string, string> = {
  "nc.approval.request": "asks approval",
  "nc.approval.grant": "approves",
  "nc.approval.reject": "rejects",
  "nc.approval.expire": "expired",
  "nc.approval.withdraw": "withdrawn",
};

/** Columns of one record: seq, time, type, actor, verdict/exit/approval, short l4. */
function showRow(line: string): string[] {
  try {
    const r = JSON.parse(line) as Partial<AuditRecord>;
    const t: Partial<TibetToken> = r.token ?? {};
    let context: Record<string, unknown> = {};
    try {
      context = JSON.parse(t.eromheen ?? "{}");
    } catch { /* shown without verdict */ }
    const approval = APPROVAL_WORDS[t.token_type ?? ""];
    const outcome = [
      typeof context.verdict === "string" ? context.verdict : "",
      context.exit_code !== undefined ? `exit ${context.exit_code}` : "",
      approval && typeof context.request_id === "string"
        ? `${approval} #${context.request_id}${
          typeof context.requester === "string" ? ` of ${context.requester}` : ""
        }`
        : "",
      typeof context.approved_by === "string" ? `approved by ${context.approved_by}` : "",
    ].filter(Boolean).join(" ") || "-";
    const type = `${t.token_type}${r.parent_seq ? ` (of #${r.parent_seq})` : ""}`;
    const l4 = typeof r.l4 === "string" ? `l4 ${r.l4.slice(0, 12)}…` : "";
    return [`#${r.seq}`, String(t.timestamp), type, String(t.actor), outcome, l4];
  } catch {
    return ["#?", `unreadable line: ${line.slice(0, 60)}`];
  }
}
