/**
 * Bounded collector of a command's terminal output, rendered as plain text for a
 * chat message.
 *
 * Memory: of `maxBytes`, the first three quarters keep the head of the raw output
 * and the last quarter a ring of its tail (64 KiB gives 48 KiB + 16 KiB); bytes in
 * between are only counted and hashed. A command printing 1 GB therefore costs
 * `maxBytes` plus a constant. Raw bytes are kept and rendered on demand, so UTF-8
 * and escape sequences split across chunks are decoded as one.
 *
 * Rendering: UTF-8 with U+FFFD for invalid bytes, ANSI escape sequences removed,
 * `\r\n` normalised to `\n`, each carriage-return progress line reduced to its
 * last non-empty state, backspace applied (man's overstrike), and every other
 * control character except `\n` and `\t` dropped.
 * @module
 */

import { createHash } from "node:crypto";

/** A bounded output collector; see the module doc for memory and rendering. */
export interface OutputBuffer {
  /** Appends raw output bytes (the chunk is copied, so callers may reuse it). */
  push(chunk: Uint8Array): void;
  /** The cleaned text of everything kept, with a cut note where bytes were dropped. */
  text(): string;
  /**
   * The cleaned text fitted into `limitChars` (UTF-16 code units): head and tail
   * cut at line boundaries around a note such as
   * `… [output cut: 1.0 GB total, showing first 3.0 KB and last 1.0 KB]`.
   */
  render(limitChars: number): string;
  /** Hex SHA-256 of every byte pushed so far (not only the kept ones). */
  sha256Hex(): string;
  /** Number of bytes pushed so far. */
  readonly totalBytes: number;
  /** True once bytes between head and tail had to be dropped. */
  readonly truncated: boolean;
}

/**
 * Creates an {@linkcode OutputBuffer} keeping at most `maxBytes` raw bytes.
 *
 * @throws RangeError when `maxBytes` is not an integer of at least 4.
 */
export function createOutputBuffer(maxBytes: number): OutputBuffer {
  if (!Number.isInteger(maxBytes) || maxBytes < 4) {
    throw new RangeError(
      `output buffer size must be an integer of at least 4 bytes, got ${maxBytes}`,
    );
  }
  const headCap = Math.floor(maxBytes * 3 / 4);
  const tail = createRing(maxBytes - headCap);
  const headChunks: Uint8Array[] = [];
  let headLen = 0;
  let total = 0;
  const hash = createHash("sha256");

  const push = (chunk: Uint8Array): void => {
    if (chunk.length === 0) return;
    hash.update(chunk);
    total += chunk.length;
    const toHead = Math.min(chunk.length, headCap - headLen);
    if (toHead > 0) {
      headChunks.push(chunk.slice(0, toHead));
      headLen += toHead;
    }
    if (toHead < chunk.length) tail.push(chunk.subarray(toHead));
  };

  const render = (limitChars: number): string => {
    const head = concat(headChunks, headLen);
    const dropped = total > headLen + tail.length;
    if (!dropped) {
      const full = cleanTerminalText(decode(concat([head, tail.bytes()])));
      return full.length <= limitChars ? full : cut(full, full, total, limitChars);
    }
    const headText = cleanTerminalText(decode(head.subarray(0, completeUtf8End(head))));
    const tailText = cleanTerminalText(decode(alignTailStart(tail.bytes())));
    return cut(headText, tailText, total, limitChars);
  };

  return {
    push,
    render,
    text: () => render(Number.POSITIVE_INFINITY),
    sha256Hex: () => hash.copy().digest("hex"),
    get totalBytes() {
      return total;
    },
    get truncated() {
      return total > headLen + tail.length;
    },
  };
}

/** Longest rendering of a size by {@linkcode formatBytes}, to reserve room for the note. */
const WIDEST_SIZE = "999.9 KB";

/** Formats a byte count with decimal units (`1.0 GB` is 10^9 bytes). */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB", "PB"];
  let v = n / 1000;
  let i = 0;
  // Round first so 999.96 KB is shown as 1.0 MB, not 1000.0 KB.
  while (Number(v.toFixed(1)) >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

function cutNote(total: number, headSize: string, tailSize: string): string {
  return `… [output cut: ${
    formatBytes(total)
  } total, showing first ${headSize} and last ${tailSize}]`;
}

/**
 * Joins the start of `headText` and the end of `tailText` around a cut note,
 * within `limit` characters. Three quarters of the room go to the head, which
 * usually explains what happened; room one side does not need goes to the other.
 */
function cut(headText: string, tailText: string, total: number, limit: number): string {
  const note0 = cutNote(total, WIDEST_SIZE, WIDEST_SIZE);
  const room = limit - note0.length - 2; // two newlines around the note
  if (room < 0) return note0.slice(0, Math.max(0, limit));
  let headRoom = Math.min(headText.length, Math.ceil(room * 3 / 4));
  const tailRoom = Math.min(tailText.length, room - headRoom);
  headRoom = Math.min(headText.length, room - tailRoom);

  let head = headText.slice(0, headRoom);
  const lastNl = head.lastIndexOf("\n");
  if (head.length < headText.length && lastNl >= head.length / 2) head = head.slice(0, lastNl + 1);
  if (isHighSurrogate(head.charCodeAt(head.length - 1))) head = head.slice(0, -1);

  let tail = tailRoom > 0 ? tailText.slice(tailText.length - tailRoom) : "";
  const firstNl = tail.indexOf("\n");
  if (tail.length < tailText.length && firstNl >= 0 && firstNl < tail.length / 2) {
    tail = tail.slice(firstNl + 1);
  }
  if (isLowSurrogate(tail.charCodeAt(0))) tail = tail.slice(1);

  const sep = head === "" || head.endsWith("\n") ? "" : "\n";
  const note = cutNote(total, formatBytes(utf8Length(head)), formatBytes(utf8Length(tail)));
  return `${head}${sep}${note}\n${tail}`;
}

// Strings (OSC, DCS, SOS, PM, APC) up to their terminator: BEL, ESC \ or C1 ST.
// deno-lint-ignore no-control-regex -- matching control characters is the point
const STRING_SEQ = /(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)/g;
// CSI: parameters, intermediates, final byte; an unfinished one at the very end too.
// deno-lint-ignore no-control-regex -- matching control characters is the point
const CSI_SEQ = /(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*(?:[\x40-\x7e]|$)/g;
// Every other escape (charset designation, ESC 7, ESC =, ...), and a lone ESC.
// deno-lint-ignore no-control-regex -- matching control characters is the point
const ESC_SEQ = /\x1b[\x20-\x2f]*[\x30-\x7e]?/g;
// Controls left after line handling: C0 except \t and \n, DEL, C1.
// deno-lint-ignore no-control-regex -- matching control characters is the point
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

/**
 * Turns decoded terminal output into plain text: strips ANSI escape sequences,
 * normalises `\r\n`, keeps the last non-empty state of a line rewritten with `\r`
 * (not a terminal-style overlay: erase-line sequences are stripped first, so an
 * overlay would bring back text the program had erased), applies backspaces and
 * drops every other control character except `\n` and `\t`.
 */
export function cleanTerminalText(s: string): string {
  const stripped = s.replace(STRING_SEQ, "").replace(CSI_SEQ, "").replace(ESC_SEQ, "");
  return stripped.split("\n").map(cleanLine).join("\n");
}

function cleanLine(line: string): string {
  if (line.includes("\r")) {
    const states = line.split("\r").filter((seg) => seg !== "");
    line = states.length > 0 ? states[states.length - 1] : "";
  }
  if (line.includes("\b")) {
    const out: string[] = [];
    for (const ch of line) ch === "\b" ? out.pop() : out.push(ch);
    line = out.join("");
  }
  return line.replace(CONTROL, "");
}

const DECODER = new TextDecoder("utf-8", { fatal: false });

function decode(bytes: Uint8Array): string {
  return DECODER.decode(bytes);
}

/** Length of `bytes` without a multi-byte UTF-8 sequence cut off at its end. */
function completeUtf8End(bytes: Uint8Array): number {
  for (let i = bytes.length - 1; i >= Math.max(0, bytes.length - 4); i--) {
    const b = bytes[i];
    if ((b & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return bytes.length - i < need ? i : bytes.length;
  }
  return bytes.length;
}

/**
 * Where rendering of the tail starts: after its first newline, so a line (and
 * any escape sequence or UTF-8 character) cut by the ring is not shown half; with
 * no newline, after the continuation bytes of a cut character.
 */
function alignTailStart(bytes: Uint8Array): Uint8Array {
  const nl = bytes.indexOf(0x0a);
  if (nl >= 0 && nl < bytes.length - 1) return bytes.subarray(nl + 1);
  let i = 0;
  while (i < 3 && i < bytes.length && (bytes[i] & 0xc0) === 0x80) i++;
  return bytes.subarray(i);
}

interface Ring {
  push(bytes: Uint8Array): void;
  bytes(): Uint8Array;
  readonly length: number;
}

/** Keeps the last `cap` bytes pushed; the storage is allocated on first use. */
function createRing(cap: number): Ring {
  let buf: Uint8Array | null = null;
  let pos = 0; // next write index
  let len = 0;
  return {
    push(bytes: Uint8Array): void {
      buf ??= new Uint8Array(cap);
      if (bytes.length >= cap) {
        buf.set(bytes.subarray(bytes.length - cap));
        pos = 0;
        len = cap;
        return;
      }
      const first = Math.min(bytes.length, cap - pos);
      buf.set(bytes.subarray(0, first), pos);
      buf.set(bytes.subarray(first), 0);
      pos = (pos + bytes.length) % cap;
      len = Math.min(cap, len + bytes.length);
    },
    bytes(): Uint8Array {
      if (buf === null) return new Uint8Array(0);
      if (len < cap) return buf.slice(0, len);
      return concat([buf.subarray(pos), buf.subarray(0, pos)]);
    },
    get length() {
      return len;
    },
  };
}

function concat(parts: Uint8Array[], length?: number): Uint8Array {
  const out = new Uint8Array(length ?? parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (isHighSurrogate(c)) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}
