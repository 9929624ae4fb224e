/**
 * Reading the end of a line-oriented file without reading all of it: the audit
 * log grows without bound, and opening it or showing its last records must stay
 * fast.
 * @module
 */

/** The last complete lines of a file, and where its unterminated tail starts. */
export interface Tail {
  /** The last complete lines (each ended by "\n" in the file), without the "\n", oldest first. */
  lines: Uint8Array[];
  /** Byte offset just after the last "\n" (0 if none); bytes from here on are a torn tail. */
  tornStart: number;
  /** File size read. */
  size: number;
}

const CHUNK = 64 * 1024;

/** Reads the last `n` complete lines of the open `file`. */
export function readTail(file: Deno.FsFile, n: number): Tail {
  const size = file.statSync().size;
  let buf = new Uint8Array(0);
  let pos = size;
  let newlines = 0;
  // n lines need n+1 newlines to be delimited, unless they start the file.
  while (pos > 0 && newlines < n + 1) {
    const len = Math.min(CHUNK, pos);
    pos -= len;
    const chunk = new Uint8Array(len);
    file.seekSync(pos, Deno.SeekMode.Start);
    let read = 0;
    while (read < len) {
      const r = file.readSync(chunk.subarray(read));
      if (r === null) throw new Error(`file shrank while being read (at byte ${pos + read})`);
      read += r;
    }
    for (const b of chunk) if (b === 0x0a) newlines++;
    const joined = new Uint8Array(len + buf.length);
    joined.set(chunk);
    joined.set(buf, len);
    buf = joined;
  }
  const lastNl = buf.lastIndexOf(0x0a);
  const tornStart = lastNl < 0 ? 0 : pos + lastNl + 1;
  const lines: Uint8Array[] = [];
  let end = lastNl;
  while (end >= 0 && lines.length < n) {
    const start = end === 0 ? 0 : buf.lastIndexOf(0x0a, end - 1) + 1;
    if (start === 0 && pos > 0) break; // not delimited: the line starts before what was read
    lines.unshift(buf.subarray(start, end));
    end = start - 1;
  }
  return { lines, tornStart, size };
}
