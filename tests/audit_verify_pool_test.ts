// How `audit verify` cuts a log into chunks for its Workers: every byte in one
// chunk, in order, each chunk whole lines; and the verdict on a log of several
// chunks, read from a file, matches the one of a single thread.
import assert from "node:assert/strict";
import { openAuditLog } from "../lib/audit/log.ts";
import { loadOrCreateSigningKey } from "../lib/audit/signing_key.ts";
import { verifyLogFile } from "../lib/audit/verify.ts";
import type { ChunkRequest } from "../lib/audit/verify_chunk.ts";
import { CHUNK_BYTES, fileChunks, memoryChunks } from "../lib/audit/verify_pool.ts";

function assertWholeLines(chunks: ChunkRequest[], all: Uint8Array, what: string): void {
  const joined = new Uint8Array(chunks.reduce((n, c) => n + c.bytes.length, 0));
  let at = 0;
  for (const [i, c] of chunks.entries()) {
    joined.set(c.bytes, at);
    at += c.bytes.length;
    if (i < chunks.length - 1) {
      assert.equal(c.bytes.at(-1), 0x0a, `${what}: chunk ${i} ends inside a line`);
      assert.equal(c.isEnd, false, `${what}: chunk ${i} says it ends the log`);
    } else if (c.bytes.at(-1) !== 0x0a) {
      assert.equal(c.isEnd, true, `${what}: a cut-off last line is not flagged`);
    }
  }
  assert.deepEqual(joined, all, `${what}: the chunks are not the log`);
}

Deno.test("verify chunks: a file's chunks are its lines, whole, across chunk boundaries", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/log`;
    const sizes = [0, 1, CHUNK_BYTES + 5, 5, CHUNK_BYTES - 1, CHUNK_BYTES, 3 * CHUNK_BYTES, 2];
    const lines = sizes.map((n, i) => String.fromCharCode(97 + i).repeat(n) + "\n").join("");
    for (const torn of ["", "partial line"]) {
      await Deno.writeTextFile(path, lines + torn);
      const all = await Deno.readFile(path);
      const chunks = await Array.fromAsync(fileChunks(path));
      assertWholeLines(chunks, all, `torn=${JSON.stringify(torn)}`);
      if (torn) assert.equal(chunks.at(-1)!.isEnd, true);
    }
    await Deno.writeTextFile(path, "");
    assert.deepEqual(await Array.fromAsync(fileChunks(path)), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("verify chunks: a log in memory gives at least the chunks asked for, copies", () => {
  const text = Array.from({ length: 12 }, (_, i) => `line ${i}\n`).join("") + "torn";
  const bytes = new TextEncoder().encode(text);
  const chunks = [...memoryChunks(bytes, 3)];
  assert.equal(chunks.length, 3);
  assertWholeLines(chunks, bytes, "memory");
  assert.equal(chunks.at(-1)!.isEnd, true);
  for (const c of chunks) assert.notEqual(c.bytes.buffer, bytes.buffer);
});

Deno.test("verify chunks: a log of several chunks has one verdict, threads or not", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const key = await loadOrCreateSigningKey(`${dir}/k.jwk`);
    const path = `${dir}/audit.jsonl`;
    const log = await openAuditLog(path, key, { sync: false });
    for (let i = 0; i < 1500; i++) {
      await log.append({
        token_type: "nc.command.execute",
        actor: "@operator:example.org",
        erin: "uptime",
        eromheen: { note: "x".repeat(1500) },
        erachter: "several chunks",
      });
    }
    const count = log.head().seq;
    await log.close();
    assert.ok((await Deno.stat(path)).size > 3 * CHUNK_BYTES);
    const verdicts = async () => {
      const one = await verifyLogFile(path, {}, { threads: 1 });
      const two = await verifyLogFile(path, {}, { threads: 2 });
      assert.deepEqual(two, one);
      return one;
    };
    const intact = await verdicts();
    assert.equal(intact.ok && intact.count, count);

    // A flipped byte in the first record after the first chunk boundary, then a
    // cut-off last line: found at the same record either way.
    const bytes = await Deno.readFile(path);
    const cut = bytes.lastIndexOf(0x0a, CHUNK_BYTES - 1) + 1;
    const seq = bytes.subarray(0, cut).filter((b) => b === 0x0a).length + 1;
    const edited = bytes.slice();
    edited[cut + 200] ^= 1;
    await Deno.writeFile(path, edited);
    const bad = await verdicts();
    assert.equal(!bad.ok && bad.firstBadSeq, seq);
    await Deno.writeFile(path, bytes.subarray(0, bytes.length - 10));
    const torn = await verdicts();
    assert.equal(!torn.ok && torn.firstBadSeq, count);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
