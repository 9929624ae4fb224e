/**
 * Lines of stdin for `--password-stdin` and `--recovery-key-stdin`, read through
 * one buffer: both may come in one write (`printf 'pw\nkey\n' | …`), and a
 * reader per secret would drop what the first read past its own line.
 * @module
 */

/** Reads stdin one line at a time. */
export interface LineReader {
  /** The next line without its newline; null once stdin is closed and drained. */
  next(): Promise<string | null>;
}

/**
 * A reader over `source` (default: this process's stdin). It holds the stream
 * only while it reads a line, so a terminal prompt or readline can use stdin
 * after it (what it read past its line stays in its own buffer).
 */
export function lineReader(
  source: () => ReadableStream<Uint8Array> = () => Deno.stdin.readable,
): LineReader {
  let reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  const dec = new TextDecoder();
  let buf = "";
  let done = false;
  return {
    async next() {
      for (;;) {
        const i = buf.indexOf("\n");
        if (i >= 0) {
          const line = buf.slice(0, i).replace(/\r$/, "");
          buf = buf.slice(i + 1);
          if (buf === "" && reader) {
            reader.releaseLock();
            reader = null;
          }
          return line;
        }
        if (done) {
          if (buf === "") return null;
          const last = buf;
          buf = "";
          return last;
        }
        reader ??= source().getReader();
        const { value, done: end } = await reader.read();
        if (end) {
          done = true;
          buf += dec.decode();
          reader.releaseLock();
          reader = null;
        } else buf += dec.decode(value, { stream: true });
      }
    },
  };
}
