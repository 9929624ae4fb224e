/**
 * `tibet-nc audit replay SEQ --identity FILE`: the recorded output of one
 * command, decrypted and checked against its signed record (see
 * `lib/recording/replay.ts`). The output goes to stdout as the command printed
 * it, the verdict to stderr, so `> out.txt` keeps only the output.
 * @module
 */

import { dirOf } from "../audit/durable_file.ts";
import { errorMessage } from "../audit/errors.ts";
import { RECORDINGS_DIR } from "../recording/recorder.ts";
import { replayRecording } from "../recording/replay.ts";
import { cannotRead, logPath } from "./audit_paths.ts";
import { UsageError } from "./args.ts";

/** Replays recording `seqText` (a positional of `audit replay`); returns the exit code. */
export async function replay(seqText: string | undefined, opts: Map<string, string>) {
  if (seqText === undefined) throw new UsageError("replay needs the #N of the command's reply");
  const seqDigits = seqText.replace(/^#/, "");
  if (!/^[1-9]\d{0,15}$/.test(seqDigits)) {
    throw new UsageError(`"${seqText}" is not a record number (the #N of the command's reply)`);
  }
  const identityFile = opts.get("--identity");
  if (identityFile === undefined) {
    throw new UsageError(
      "replay needs --identity FILE (the age identity of TIBET_NC_RECORD_PUBKEY)",
    );
  }
  const pubkeyHex = opts.get("--pubkey")?.toLowerCase();
  if (pubkeyHex !== undefined && !/^[0-9a-f]{64}$/.test(pubkeyHex)) {
    throw new UsageError("--pubkey must be 64 hex digits (a raw Ed25519 public key)");
  }
  let identityText: string;
  try {
    identityText = await Deno.readTextFile(identityFile);
  } catch (e) {
    console.error(`tibet-nc audit: cannot read identity file ${identityFile}: ${errorMessage(e)}`);
    return 4;
  }
  const path = logPath(opts);
  let log: Uint8Array;
  try {
    log = await Deno.readFile(path);
  } catch (e) {
    return cannotRead(path, opts, e);
  }
  const recordingsDir = `${dirOf(path)}/${RECORDINGS_DIR}`;
  let result;
  try {
    result = await replayRecording({
      log,
      recordingsDir,
      seq: Number(seqDigits),
      identityText,
      pubkeyHex,
    });
  } catch (e) {
    console.error(
      `tibet-nc audit: cannot read the recording in ${recordingsDir}: ${errorMessage(e)}`,
    );
    return 1;
  }
  if (!result.ok) {
    console.error(`FAIL: ${result.reason}`);
    return result.code;
  }
  await writeAll(result.output);
  const which = `command #${result.executeSeq} (result #${result.resultSeq})`;
  console.error(
    result.truncated
      ? `ok: ${which}: TRUNCATED recording, the first ${result.output.length} of ` +
        `${result.totalBytes} bytes (TIBET_NC_FULL_OUTPUT_BYTES); they match the signed ` +
        `recording SHA-256 ${
          result.sha256.slice(0, 16)
        }…, the whole output's hash cannot be checked`
      : `ok: ${which}: ${result.output.length} bytes, matching the signed output SHA-256 ` +
        `${result.sha256.slice(0, 16)}…`,
  );
  return 0;
}

async function writeAll(bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await Deno.stdout.write(bytes.subarray(written));
}
