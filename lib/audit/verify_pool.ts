/**
 * Where the chunks of `audit verify` come from and how they reach the Workers.
 * A log is cut into runs of whole lines of about {@linkcode CHUNK_BYTES}; each
 * Worker is kept two chunks ahead, and the verdicts are handed back in log
 * order as they arrive, so the link checks of this thread, the reading of the
 * file and the Workers all overlap, and the last Worker to finish has at most
 * a small chunk left when the other is done.
 * @module
 */

import type { ChunkRequest, ChunkResult } from "./verify_chunk.ts";

/**
 * Bytes per chunk: small enough that both cores are busy until the end (a
 * chunk is about 1,000 records, some 40 ms of work), large enough that the
 * messages cost nothing next to the work.
 */
export const CHUNK_BYTES = 1 << 20;

// Chunks in flight per Worker: the next one is waiting while this thread is
// busy linking a verdict.
const DEPTH = 2;

/**
 * Chunks of a log file, read as they are needed. Each chunk's buffer is its
 * own (it can be transferred); only the bytes of a line cut by a chunk's end
 * are copied, into the next one.
 */
export async function* fileChunks(path: string): AsyncGenerator<ChunkRequest> {
  const file = await Deno.open(path, { read: true });
  try {
    let carry = new Uint8Array(0);
    for (;;) {
      // A line longer than a chunk doubles the buffer rather than growing it by steps.
      const buf = new Uint8Array(carry.length + Math.max(CHUNK_BYTES, carry.length));
      buf.set(carry);
      let n = carry.length;
      let eof = false;
      while (n < buf.length) {
        const got = await file.read(buf.subarray(n));
        if (got === null) {
          eof = true;
          break;
        }
        n += got;
      }
      if (eof) {
        if (n > 0) yield { bytes: buf.subarray(0, n), isEnd: true };
        return;
      }
      const nl = buf.lastIndexOf(0x0a, n - 1);
      carry = buf.slice(nl + 1, n);
      if (nl >= 0) yield { bytes: buf.subarray(0, nl + 1), isEnd: false };
    }
  } finally {
    file.close();
  }
}

/**
 * Chunks of a log in memory, at least `min` of them, each a copy: the caller's
 * bytes stay theirs. The last one ends the log.
 */
export function* memoryChunks(bytes: Uint8Array, min: number): Generator<ChunkRequest> {
  const n = Math.max(min, Math.ceil(bytes.length / CHUNK_BYTES));
  let start = 0;
  for (let i = 1; i <= n && start < bytes.length; i++) {
    let end = i === n ? bytes.length : Math.floor((bytes.length * i) / n);
    if (end < bytes.length) {
      const nl = bytes.indexOf(0x0a, Math.max(end - 1, start));
      end = nl < 0 ? bytes.length : nl + 1;
    }
    yield { bytes: bytes.slice(start, end), isEnd: end === bytes.length };
    start = end;
  }
}

const WORKER_URL = new URL("./verify_worker.ts", import.meta.url);

/** True when a verify Worker can start (the module is readable). */
export function canStartWorkers(): boolean {
  return WORKER_URL.protocol !== "file:" ||
    Deno.permissions.querySync({ name: "read", path: WORKER_URL }).state === "granted";
}

interface PoolWorker {
  worker: Worker;
  /** Indexes of the chunks sent and not yet answered, oldest first. */
  inFlight: number[];
}

/**
 * Checks the chunks of `chunks` on `threads` Workers and hands each verdict to
 * `take` in log order; stops, without reading further, when `take` returns
 * true. Rejects when a Worker fails (e.g. cannot load its module): the caller
 * starts over in its own thread.
 */
export async function checkInWorkers(
  chunks: AsyncIterator<ChunkRequest> | Iterator<ChunkRequest>,
  threads: number,
  take: (result: ChunkResult) => boolean,
): Promise<void> {
  const results = new Map<number, ChunkResult>();
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  const notify = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  const pool: PoolWorker[] = [];
  let sourceDone = false;
  try {
    for (let i = 0; i < threads; i++) {
      const p: PoolWorker = {
        worker: new Worker(WORKER_URL.href, {
          type: "module",
          name: "audit-verify",
          // Not narrowed with `deno.permissions`: without --unstable-worker-options
          // that ends the process. It needs none, and reads only the bytes it is sent.
        }),
        inFlight: [],
      };
      p.worker.onmessage = (e: MessageEvent<ChunkResult>) => {
        results.set(p.inFlight.shift()!, e.data);
        notify();
      };
      p.worker.onerror = (e) => {
        e.preventDefault();
        failure ??= new Error(e.message);
        notify();
      };
      pool.push(p);
    }
    let sent = 0;
    let next = 0;
    for (;;) {
      for (let r = results.get(next); r !== undefined; r = results.get(next)) {
        results.delete(next++);
        if (take(r)) return;
      }
      if (failure) throw failure;
      if (sourceDone && next === sent) return;
      const idle = sourceDone ? undefined : leastBusy(pool);
      if (idle) {
        const item = await chunks.next();
        if (item.done) {
          sourceDone = true;
        } else {
          const { bytes, isEnd } = item.value;
          idle.inFlight.push(sent++);
          idle.worker.postMessage({ bytes, isEnd }, [bytes.buffer]);
        }
        continue;
      }
      // Every check of the state above ran since the last await: nothing is missed.
      await new Promise<void>((resolve) => wake = resolve);
    }
  } finally {
    for (const p of pool) p.worker.terminate();
    if (!sourceDone) await chunks.return?.();
  }
}

function leastBusy(pool: PoolWorker[]): PoolWorker | undefined {
  let best: PoolWorker | undefined;
  for (const p of pool) {
    if (p.inFlight.length < DEPTH && (!best || p.inFlight.length < best.inFlight.length)) best = p;
  }
  return best;
}
