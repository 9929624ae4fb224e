/**
 * File bytes between the monitor and the worker for one run, either way, over
 * `postMessage`: chunks in order (their buffers transferred, not copied), at
 * most {@linkcode WINDOW} of them unacknowledged, so a fast reader cannot fill
 * the slower side's memory; then an end that says whether the bytes are whole.
 * @module
 */

import type { FileChunk } from "./protocol.ts";
import { FileError, TRANSFER_RULES } from "../files/request.ts";

/** Chunks in flight at most (each up to the 64 KiB of a pipe read, or a download's). */
export const WINDOW = 8;

/** One side of a run's file channel. */
export interface FileChannel {
  /** Sends `source`; resolves once the last chunk went out (not when it was used). */
  send(source: ReadableStream<Uint8Array>): Promise<void>;
  /** What the other side sends; errors when its end names an error. */
  receive(): ReadableStream<Uint8Array>;
  /** Hands this channel a message of its run. */
  deliver(m: FileChunk): void;
  /** Ends both directions (the run is over): a waiting send or receive fails. */
  close(reason: string): void;
}

/** The channel of run `id`; `post` sends a message (transferring `file-data` buffers). */
export function fileChannel(
  id: number,
  post: (m: FileChunk, transfer?: Transferable[]) => void,
): FileChannel {
  let credit = WINDOW;
  let wake: (() => void) | null = null;
  let closed: string | null = null;
  // Received, not yet read: at most WINDOW chunks, since each is acknowledged when read.
  const queue: FileChunk[] = [];
  let arrived: (() => void) | null = null;
  return {
    async send(source) {
      const reader = source.getReader();
      let finished = false;
      try {
        for (;;) {
          while (credit === 0 && closed === null) await new Promise<void>((r) => wake = r);
          if (closed !== null) throw new Error(closed);
          let chunk: ReadableStreamReadResult<Uint8Array>;
          try {
            chunk = await reader.read();
          } catch (e) {
            const rule = e instanceof FileError ? e.rule : "deny.file.transfer";
            post({ type: "file-end", id, error: (e as Error).message, rule });
            throw e;
          }
          if (chunk.done) break;
          credit--;
          // A fresh buffer of its own, so it can be transferred whatever its origin.
          const bytes = chunk.value.slice();
          post({ type: "file-data", id, bytes }, [bytes.buffer]);
        }
        post({ type: "file-end", id });
        finished = true;
      } finally {
        // Stopped early: the source (a download, a reader process) is told to stop.
        if (!finished) await reader.cancel().catch(() => {});
        reader.releaseLock();
      }
    },
    receive() {
      return new ReadableStream<Uint8Array>({
        async pull(c) {
          while (queue.length === 0 && closed === null) {
            await new Promise<void>((r) => arrived = r);
          }
          const m = queue.shift();
          if (m === undefined) return c.error(new Error(closed ?? "closed"));
          if (m.type === "file-data") {
            c.enqueue(m.bytes);
            post({ type: "file-ack", id });
          } else if (m.type === "file-end") {
            if (m.error === undefined) return c.close();
            const rule = TRANSFER_RULES.has(String(m.rule)) ? String(m.rule) : "deny.file.transfer";
            c.error(new FileError(rule, String(m.error).slice(0, 500)));
          }
        },
      }, { highWaterMark: 0 });
    },
    deliver(m) {
      if (m.type === "file-ack") {
        credit++;
        wake?.();
        wake = null;
        return;
      }
      // A side that ignores the window (a compromised worker) is cut off, not buffered.
      if (queue.length > WINDOW) return this.close("more file data than the window allows");
      queue.push(m);
      arrived?.();
      arrived = null;
    },
    close(reason) {
      if (closed !== null) return;
      closed = reason;
      wake?.();
      arrived?.();
    },
  };
}
