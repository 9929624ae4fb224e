/**
 * The complete output of one command, up to a cap: what the operator can fetch
 * as `output.txt` when the message shows only part of it, and what is recorded
 * for `audit replay`. The message's own view stays `output.ts`'s head and tail.
 * @module
 */

/** Complete output kept so far. */
export interface FullOutput {
  /** Appends a chunk (copied; the runner reuses its buffer). */
  push(chunk: Uint8Array): void;
  /** The bytes kept: all of the output unless {@linkcode FullOutput.truncated}. */
  bytes(): Uint8Array;
  /** The same bytes as a stream of the kept chunks, without joining them. */
  stream(): ReadableStream<Uint8Array>;
  /** Bytes kept. */
  readonly keptBytes: number;
  /** True when the output passed the cap and its end was dropped. */
  readonly truncated: boolean;
  /** Bytes seen, kept or not. */
  readonly totalBytes: number;
  /**
   * Frees the kept bytes now (it keeps nothing after): V8 frees a dropped
   * buffer only at its next full collection, so the next command's output would
   * otherwise be held beside this one's.
   */
  release(): void;
}

/** Keeps the first `capBytes` of the output, in chunks so no growth copies it whole. */
export function createFullOutput(capBytes: number): FullOutput {
  const parts: Uint8Array<ArrayBuffer>[] = [];
  let kept = 0;
  let total = 0;
  return {
    push(chunk) {
      total += chunk.length;
      const room = capBytes - kept;
      if (room <= 0 || chunk.length === 0) return;
      const part = chunk.slice(0, Math.min(room, chunk.length));
      parts.push(part);
      kept += part.length;
    },
    bytes() {
      const out = new Uint8Array(kept);
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.length;
      }
      return out;
    },
    stream() {
      let i = 0;
      return new ReadableStream<Uint8Array>({
        pull(c) {
          if (i < parts.length) c.enqueue(parts[i++]);
          else c.close();
        },
      });
    },
    get keptBytes() {
      return kept;
    },
    get truncated() {
      return total > kept;
    },
    get totalBytes() {
      return total;
    },
    release() {
      // Detaching an ArrayBuffer lets go of its memory at once.
      for (const p of parts.splice(0)) p.buffer.transfer(0);
      kept = 0;
    },
  };
}
