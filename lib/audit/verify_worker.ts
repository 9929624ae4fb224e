/**
 * Entry point of an `audit verify` Worker: checks the records of one chunk of
 * the log on their own (see `verify_chunk.ts`) and posts the verdict. It reads
 * nothing itself: the bytes come by message.
 * @module
 */

import { checkChunk, type ChunkRequest, type ChunkResult } from "./verify_chunk.ts";

/** The parts of the Worker global scope used here. */
interface WorkerScope {
  postMessage(m: ChunkResult): void;
  onmessage: ((e: MessageEvent<ChunkRequest>) => void) | null;
}

const scope = globalThis as unknown as WorkerScope;
scope.onmessage = (e) => scope.postMessage(checkChunk(e.data.bytes, e.data.isEnd));
