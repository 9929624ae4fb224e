/**
 * Recorded output: the complete output of each command (up to
 * `TIBET_NC_FULL_OUTPUT_BYTES`), encrypted with age to `TIBET_NC_RECORD_PUBKEY`
 * and kept in `<state dir>/recordings/<seq>.age`, where `seq` is the command's
 * execute record. The agent holds only the public key, so neither it nor
 * whoever takes it over can read past output; `tibet-nc audit replay` decrypts
 * one with the identity kept elsewhere. The fields {@linkcode Recorder.save}
 * returns go into the signed result record, which binds the recording's
 * SHA-256 to the chain.
 *
 * Recording is a side channel: a failure is logged and noted in the record
 * (`recording_error`), never allowed to stop or hide the command's answer.
 * @module
 */

import { Encrypter } from "age-encryption";
import type { JsonObject } from "../audit/canonical_json.ts";
import { syncDirOf, writeAllSync } from "../audit/durable_file.ts";
import { errorMessage } from "../audit/errors.ts";
import { sha256Hex } from "../audit/hash.ts";

/** The recordings' directory inside the state dir. */
export const RECORDINGS_DIR = "recordings";

const DAY_MS = 24 * 60 * 60 * 1000;
const NAME = /^([1-9]\d*)\.age$/;

/** What a recording holds: the shape of `lib/exec/full_output.ts`'s FullOutput. */
export interface RecordedOutput {
  /** The bytes to record (the output up to the cap). */
  bytes(): Uint8Array;
  /** True when the output passed the cap and only its start is recorded. */
  readonly truncated: boolean;
  /** Bytes the command printed, recorded or not. */
  readonly totalBytes: number;
}

/** How to open a {@linkcode Recorder}. */
export interface RecorderOptions {
  /** Where recordings go: `<state dir>/recordings` (created 0700). */
  dir: string;
  /** age X25519 recipient (`age1…`). */
  pubkey: string;
  /** Recordings older than this many days are deleted. */
  keepDays: number;
  /** All recordings together stay under this; the oldest (lowest seq) go first. */
  maxBytes: number;
  /** Where failures are reported (the monitor's log). */
  log: (msg: string) => void;
  /** The clock retention judges by, in ms since the epoch; tests move it. */
  now?: () => number;
}

/** What one retention pass removed. */
export interface Pruned {
  /** seqs deleted for age. */
  expired: number[];
  /** seqs deleted, oldest first, to stay under the byte bound. */
  overBytes: number[];
}

/** An open recordings directory. */
export interface Recorder {
  readonly dir: string;
  /**
   * Encrypts and stores the output of the command whose execute record is
   * `seq`, then applies retention. Never throws: returns the fields for the
   * result record's eromheen, `recording_error` when nothing was kept.
   */
  save(seq: number, output: RecordedOutput): Promise<JsonObject>;
  /** Applies retention now (also done at open and after every save). */
  prune(): Promise<Pruned>;
}

/** Path of the recording of execute record `seq`. */
export function recordingPath(dir: string, seq: number): string {
  return `${dir.replace(/\/+$/, "")}/${seq}.age`;
}

/**
 * Opens (creating it 0700) the recordings directory and applies retention once.
 * Throws an Error a sysadmin can act on when the directory cannot be made.
 */
export async function openRecorder(opts: RecorderOptions): Promise<Recorder> {
  const now = opts.now ?? Date.now;
  const dir = opts.dir.replace(/\/+$/, "");
  try {
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    // It holds only ciphertext, but its names and sizes tell who ran how much.
    if ((Deno.statSync(dir).mode ?? 0) & 0o077) Deno.chmodSync(dir, 0o700);
  } catch (e) {
    throw new Error(
      `recordings directory ${dir} cannot be created: ${errorMessage(e)}; make the state dir ` +
        `(TIBET_NC_STATE_DIR) writable by the tibet-nc user, or unset TIBET_NC_RECORD_PUBKEY`,
    );
  }
  const encrypter = new Encrypter();
  encrypter.addRecipient(opts.pubkey);
  // One at a time: a prune must not delete a file a save is about to rename.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(f: () => Promise<T>): Promise<T> => {
    const run = queue.then(f);
    queue = run.catch(() => {});
    return run;
  };

  const prune = () => serial(() => Promise.resolve(pruneDir(dir, opts, now())));

  const save = (seq: number, output: RecordedOutput) =>
    serial(async (): Promise<JsonObject> => {
      const bytes = output.bytes();
      try {
        const sealed = await encrypter.encrypt(bytes);
        if (sealed.length > opts.maxBytes) {
          throw new Error(
            `it is ${sealed.length} bytes, more than TIBET_NC_RECORD_MAX_BYTES ` +
              `(${opts.maxBytes}) allows for all recordings together`,
          );
        }
        writeDurably(recordingPath(dir, seq), sealed, new Date(now()));
      } catch (e) {
        const why = `output of #${seq} not recorded: ${errorMessage(e)}`;
        opts.log(`recording: ${why}`);
        return { recording_error: why };
      }
      try {
        pruneDir(dir, opts, now());
      } catch (e) {
        opts.log(`recording: retention in ${dir} failed: ${errorMessage(e)}`);
      }
      return {
        recording_sha256: sha256Hex(bytes),
        recording_bytes: bytes.length,
        recording_truncated: output.truncated,
      };
    });

  await prune().catch((e) => opts.log(`recording: retention in ${dir} failed: ${errorMessage(e)}`));
  return { dir, save, prune };
}

/**
 * tmp + fsync + rename + fsync of the directory: a crash leaves the old file or
 * the new one. The mtime is set from the recorder's clock, the one retention judges by.
 */
function writeDurably(path: string, bytes: Uint8Array, at: Date): void {
  const tmp = `${path}.tmp`;
  const file = Deno.openSync(tmp, { write: true, create: true, truncate: true, mode: 0o600 });
  try {
    writeAllSync(file, bytes);
    file.utimeSync(at, at);
    file.syncSync();
  } finally {
    file.close();
  }
  Deno.renameSync(tmp, path);
  syncDirOf(path);
}

/** Deletes what is past `keepDays` or, oldest first, over `maxBytes`; and leftover tmp files. */
function pruneDir(dir: string, opts: RecorderOptions, nowMs: number): Pruned {
  const kept: { seq: number; size: number }[] = [];
  const pruned: Pruned = { expired: [], overBytes: [] };
  for (const entry of Deno.readDirSync(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.name.endsWith(".age.tmp")) {
      // Saves are serialised with this, so a tmp file is a crash's leftover.
      removeIfThere(path);
      continue;
    }
    const m = entry.name.match(NAME);
    if (!m || !entry.isFile) continue;
    const info = Deno.statSync(path);
    const seq = Number(m[1]);
    if (nowMs - (info.mtime?.getTime() ?? nowMs) > opts.keepDays * DAY_MS) {
      removeIfThere(path);
      pruned.expired.push(seq);
    } else kept.push({ seq, size: info.size });
  }
  kept.sort((a, b) => a.seq - b.seq);
  let total = kept.reduce((n, r) => n + r.size, 0);
  for (const r of kept) {
    if (total <= opts.maxBytes) break;
    removeIfThere(recordingPath(dir, r.seq));
    total -= r.size;
    pruned.overBytes.push(r.seq);
  }
  pruned.expired.sort((a, b) => a - b);
  return pruned;
}

function removeIfThere(path: string): void {
  try {
    Deno.removeSync(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}
