import assert from "node:assert/strict";
import { createFullOutput } from "../lib/exec/full_output.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("full output keeps the first bytes up to its cap, copied, and says it was cut", async () => {
  const full = createFullOutput(10);
  const reused = bytes("abcdef");
  full.push(reused);
  reused.fill(0x2e); // the runner reuses its buffer
  full.push(bytes("ghijkl"));
  assert.equal(new TextDecoder().decode(full.bytes()), "abcdefghij");
  assert.equal(full.keptBytes, 10);
  assert.equal(full.totalBytes, 12);
  assert.equal(full.truncated, true);
  const streamed: number[] = [];
  for await (const part of full.stream()) streamed.push(...part);
  assert.deepEqual(new Uint8Array(streamed), full.bytes());
});

Deno.test("release frees the kept bytes at once, not at V8's next collection", async () => {
  const full = createFullOutput(1 << 20);
  full.push(bytes("x".repeat(4096)));
  full.push(bytes("y".repeat(4096)));
  const held: Uint8Array[] = [];
  for await (const part of full.stream()) held.push(part);
  assert.equal(held.length, 2);
  full.release();
  // Detached: the memory behind them is gone, whoever still points at it.
  assert.deepEqual(held.map((p) => p.buffer.byteLength), [0, 0]);
  assert.equal(full.keptBytes, 0);
  assert.equal(full.bytes().length, 0);
});
