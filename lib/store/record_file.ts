/**
 * Files of framed, checksummed records: an append-only journal whose torn tail
 * (a write cut by SIGKILL or power loss) is detected and dropped, and a snapshot
 * written atomically. Every write is fsync'd before the call returns, so a caller
 * that got control back knows the bytes are on disk.
 *
 * Frame: u32 length (LE) | u32 CRC-32 of the payload | payload.
 * @module
 */

import type { Cipher } from "./cipher.ts";

const HEADER = 8;

/** CRC-32 (IEEE); hand-written because it must be synchronous and is 10 lines. */
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 of `bytes`. */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function frame(payload: Uint8Array, cipher: Cipher | null): Uint8Array {
  const body = cipher ? cipher.encrypt(payload) : payload;
  const out = new Uint8Array(HEADER + body.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, body.length, true);
  view.setUint32(4, crc32(body), true);
  out.set(body, HEADER);
  return out;
}

/** Result of reading a record file. */
export interface ReadResult {
  /** Payloads of the intact records, in order. */
  records: Uint8Array[];
  /** Byte length of the intact prefix; anything after it is a torn tail. */
  validLength: number;
}

/**
 * Reads every intact record of `path`; a missing file reads as empty. Stops at the
 * first torn or corrupt frame (the tail of an interrupted append).
 */
export function readRecords(path: string, cipher: Cipher | null): ReadResult {
  let data: Uint8Array;
  try {
    data = Deno.readFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { records: [], validLength: 0 };
    throw e;
  }
  const records: Uint8Array[] = [];
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let pos = 0;
  while (pos + HEADER <= data.length) {
    const len = view.getUint32(pos, true);
    const crc = view.getUint32(pos + 4, true);
    if (pos + HEADER + len > data.length) break;
    const body = data.subarray(pos + HEADER, pos + HEADER + len);
    if (crc32(body) !== crc) break;
    records.push(cipher ? cipher.decrypt(body) : body);
    pos += HEADER + len;
  }
  return { records, validLength: pos };
}

/** An open journal: appends are durable when `append` returns. */
export interface Journal {
  /** Appends one record and fsyncs it. */
  append(payload: Uint8Array): void;
  /** Current size in bytes. */
  size(): number;
  /** Empties the journal (after its records went into a snapshot). */
  reset(): void;
  /** Closes the file. */
  close(): void;
}

/**
 * Opens `path` for appending, first cutting off a torn tail at `validLength` so
 * new records never follow garbage.
 */
export function openJournal(path: string, validLength: number, cipher: Cipher | null): Journal {
  const file = Deno.openSync(path, { read: true, write: true, create: true, mode: 0o600 });
  file.truncateSync(validLength);
  file.seekSync(validLength, Deno.SeekMode.Start);
  file.syncSync();
  let size = validLength;
  return {
    append(payload) {
      const bytes = frame(payload, cipher);
      let written = 0;
      while (written < bytes.length) written += file.writeSync(bytes.subarray(written));
      file.syncSync();
      size += bytes.length;
    },
    size: () => size,
    reset() {
      file.truncateSync(0);
      file.seekSync(0, Deno.SeekMode.Start);
      file.syncSync();
      size = 0;
    },
    close: () => file.close(),
  };
}

/**
 * Replaces `path` with a file holding one record, atomically: write a temporary
 * file, fsync it, rename it over the old one, fsync the directory.
 */
export function writeSnapshot(path: string, payload: Uint8Array, cipher: Cipher | null): void {
  const tmp = `${path}.tmp`;
  const file = Deno.openSync(tmp, { write: true, create: true, truncate: true, mode: 0o600 });
  try {
    const bytes = frame(payload, cipher);
    let written = 0;
    while (written < bytes.length) written += file.writeSync(bytes.subarray(written));
    file.syncSync();
  } finally {
    file.close();
  }
  Deno.renameSync(tmp, path);
  syncDir(path.slice(0, path.lastIndexOf("/")) || ".");
}

/** fsyncs a directory so a rename or create in it survives power loss. */
export function syncDir(dir: string): void {
  const d = Deno.openSync(dir, { read: true });
  try {
    d.syncSync();
  } finally {
    d.close();
  }
}
