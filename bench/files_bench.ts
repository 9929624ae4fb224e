/**
 * `get` and `put` of a large file through the agent, against the floor: a
 * bare upload and download of the same bytes to the same Synapse (what any
 * client moving that file pays, without E2EE or the agent). The agent's RSS is
 * sampled during each transfer: streamed, it should grow by a few MB, not by
 * the file's size.
 * @module
 */

import { createHash } from "node:crypto";
import type { Operator } from "../tests/support/operator.ts";
import { rawMedia, receiveFile, sendFile } from "../tests/support/operator_files.ts";

/** What one run measured; times in ms, memory in bytes. */
export interface FileFigures {
  bytes: number;
  /** A bare upload plus a bare download of the same bytes. */
  floorMs: number;
  /** `$ get` sent to the file decrypted by the operator. */
  getMs: number;
  /** The operator's encrypt and upload to the agent's "wrote" reply. */
  putMs: number;
  getRssGrowth: number;
  putRssGrowth: number;
}

function rss(pid: number): number {
  const m = Deno.readTextFileSync(`/proc/${pid}/status`).match(/^VmRSS:\s+(\d+) kB/m);
  return Number(m?.[1] ?? NaN) * 1024;
}

/** Runs `f` while sampling `pid`'s RSS every 50 ms; returns its time and the peak over `before`. */
async function sampled<T>(pid: number, f: () => Promise<T>) {
  const before = rss(pid);
  let peak = before;
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rss(pid));
    } catch { /* exited */ }
  }, 50);
  const t = performance.now();
  try {
    const value = await f();
    return { value, ms: performance.now() - t, growth: peak - before };
  } finally {
    clearInterval(timer);
  }
}

/**
 * Moves `bytes` bytes (random) both ways through the agent (pid `agentPid`, its
 * file dir `fileDir`) in `roomId`, and the same bytes bare through Synapse.
 */
export async function fileFigures(
  op: Operator,
  roomId: string,
  agentPid: number,
  fileDir: string,
  bytes: number,
): Promise<FileFigures> {
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
  const sha = createHash("sha256").update(data).digest("hex");
  await Deno.writeFile(`${fileDir}/big.bin`, data, { mode: 0o644 });

  // The floor: the same bytes up and down, bare.
  const t = performance.now();
  const up = await op.client.uploadContent(new Blob([data]), {
    type: "application/octet-stream",
    includeFilename: false,
  });
  await rawMedia(op.client, up.content_uri);
  const floorMs = performance.now() - t;

  const get = await sampled(agentPid, async () => {
    const id = await op.send(roomId, `$ get ${fileDir}/big.bin`);
    const body = await op.waitForFinal(roomId, id, 600_000);
    if (!body.startsWith("sent ")) throw new Error(`get failed: ${body}`);
    const file = await receiveFile(op.client, op.fileReplies(roomId, id)[0]);
    if (createHash("sha256").update(file.bytes).digest("hex") !== sha) {
      throw new Error("get: the bytes differ");
    }
  });
  await Deno.remove(`${fileDir}/big.bin`);
  const put = await sampled(agentPid, async () => {
    const id = await sendFile(op.client, roomId, data, "big.bin", `$ put ${fileDir}`);
    const body = await op.waitForFinal(roomId, id, 600_000);
    if (!body.startsWith("wrote ") || !body.includes(sha)) throw new Error(`put failed: ${body}`);
  });
  await Deno.remove(`${fileDir}/big.bin`);
  return {
    bytes,
    floorMs,
    getMs: get.ms,
    putMs: put.ms,
    getRssGrowth: get.growth,
    putRssGrowth: put.growth,
  };
}
