/**
 * The parts of file transfer that need no homeserver: the streaming cipher
 * against matrix-encrypt-attachment (what Element uses), both ways; the
 * windowed channel between monitor and worker; the judging of paths, names
 * and requests; which events are `put` commands; and the exec-user helpers
 * on real files (a symlink pointing out, a FIFO, a swapped file).
 */
import assert from "node:assert/strict";
import {
  decryptAttachment as libDecrypt,
  encryptAttachment as libEncrypt,
} from "matrix-encrypt-attachment";
import {
  decryptAttachment,
  encryptAttachment,
  type EncryptedFile,
} from "../lib/matrix/attachment.ts";
import { fileChannel, WINDOW } from "../lib/monitor/file_channel.ts";
import type { FileChunk } from "../lib/monitor/protocol.ts";
import {
  badFileName,
  cleanPath,
  FileError,
  parseFileRequest,
  pathRefusal,
} from "../lib/files/request.ts";
import { openForGet, prepareForPut } from "../lib/files/exec_file.ts";
import { classify } from "../lib/matrix/events.ts";

const bytes = (n: number) => {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, i + 65536));
  return b;
};
const chunked = (b: Uint8Array, size: number) =>
  new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < b.length; i += size) c.enqueue(b.slice(i, i + size));
      c.close();
    },
  });
const collect = async (s: ReadableStream<Uint8Array>) =>
  new Uint8Array(await new Response(s).arrayBuffer());

Deno.test("attachment: what the agent encrypts, matrix-encrypt-attachment decrypts", async () => {
  const plain = bytes(1_000_003); // not a multiple of the AES block or the chunk size
  const enc = encryptAttachment();
  const cipher = await collect(chunked(plain, 70_001).pipeThrough(enc.stream));
  const file = enc.file("mxc://localhost/abc");
  assert.equal(cipher.length, plain.length);
  const back = new Uint8Array(await libDecrypt(cipher.slice().buffer, file));
  assert.deepEqual(back, plain);
  assert.equal(file.v, "v2");
  assert.equal(new Uint8Array(atob(file.iv).split("").map((c) => c.charCodeAt(0)))[15], 0);
});

Deno.test("attachment: what matrix-encrypt-attachment encrypts, the agent decrypts; a changed byte fails", async () => {
  const plain = bytes(300_000);
  const lib = await libEncrypt(plain.slice().buffer);
  const file = { ...lib.info, url: "mxc://localhost/x" } as EncryptedFile;
  const cipher = new Uint8Array(lib.data);
  assert.deepEqual(
    await collect(chunked(cipher, 4096).pipeThrough(decryptAttachment(file))),
    plain,
  );
  const tampered = cipher.slice();
  tampered[1234] ^= 1;
  await assert.rejects(
    collect(chunked(tampered, 4096).pipeThrough(decryptAttachment(file))),
    (e: Error) => e instanceof FileError && e.rule === "deny.file.hash",
  );
  await assert.rejects(
    collect(chunked(cipher.slice(0, 1000), 4096).pipeThrough(decryptAttachment(file))),
    /SHA-256 does not match/,
  );
  assert.throws(() => decryptAttachment({ ...file, v: "v1" } as unknown as EncryptedFile), /v2/);
  assert.throws(
    () => decryptAttachment({ ...file, hashes: {} } as unknown as EncryptedFile),
    /no SHA-256/,
  );
});

Deno.test("file channel: bytes arrive whole and in order, never more than the window in flight", async () => {
  const sent: FileChunk[] = [];
  let inFlight = 0, most = 0;
  // Two ends wired to each other, the way postMessage connects monitor and worker.
  // deno-lint-ignore prefer-const
  let b: ReturnType<typeof fileChannel>;
  const a = fileChannel(1, (m) => {
    sent.push(m);
    if (m.type === "file-data") most = Math.max(most, ++inFlight);
    queueMicrotask(() => b.deliver(m));
  });
  b = fileChannel(1, (m) => {
    if (m.type === "file-ack") inFlight--;
    queueMicrotask(() => a.deliver(m));
  });
  const plain = bytes(2_000_000);
  const received = collect(b.receive());
  await a.send(chunked(plain, 10_000));
  assert.deepEqual(await received, plain);
  assert.ok(most <= WINDOW, `${most} chunks in flight`);
  assert.equal(sent.at(-1)?.type, "file-end");
});

Deno.test("file channel: a failing source ends the other side with its rule; a flood is cut off", async () => {
  // deno-lint-ignore prefer-const
  let b: ReturnType<typeof fileChannel>;
  const a = fileChannel(2, (m) => queueMicrotask(() => b.deliver(m)));
  b = fileChannel(2, (m) => queueMicrotask(() => a.deliver(m)));
  const failing = new ReadableStream<Uint8Array>({
    pull() {
      throw new FileError("deny.file.hash", "does not match");
    },
  });
  const got = collect(b.receive());
  await assert.rejects(a.send(failing));
  await assert.rejects(got, (e: Error) => e instanceof FileError && e.rule === "deny.file.hash");

  const c = fileChannel(3, () => {});
  const reading = collect(c.receive());
  for (let i = 0; i < WINDOW + 5; i++) {
    c.deliver({ type: "file-data", id: 3, bytes: new Uint8Array(1) });
  }
  await assert.rejects(reading, /more file data than the window/);
});

Deno.test("file requests: parsed, and paths and names judged before anything is touched", () => {
  assert.deepEqual(parseFileRequest("get '/srv/f/a b.txt'"), { op: "get", path: "/srv/f/a b.txt" });
  assert.deepEqual(parseFileRequest("put --replace /srv/f"), {
    op: "put",
    target: "/srv/f",
    replace: true,
  });
  assert.match((parseFileRequest("get /a | cat") as { reason: string }).reason, /pipeline/);
  assert.equal((parseFileRequest("get") as { rule: string }).rule, "deny.file.usage");
  assert.equal((parseFileRequest("put -x /srv") as { rule: string }).rule, "deny.file.usage");

  const dirs = ["/srv/files"];
  assert.equal(pathRefusal("/srv/files/a", dirs), null);
  assert.equal(pathRefusal("/srv/files/sub/../a", dirs), null);
  assert.match(pathRefusal("/srv/files/a", [])!.reason, /set TIBET_NC_FILE_DIRS/);
  assert.equal(pathRefusal("/srv/files/../etc/passwd", dirs)!.rule, "deny.file.path");
  assert.equal(pathRefusal("/srv/filesX/a", dirs)!.rule, "deny.file.path");
  assert.equal(pathRefusal("srv/files/a", dirs)!.rule, "deny.file.path");
  assert.equal(pathRefusal("/proc/1/environ", ["/"])!.rule, "deny.file.type");
  assert.equal(cleanPath("/a/./b//c/../d"), "/a/b/d");

  for (
    const bad of ["", ".", "..", "a/b", "a\nb", "a\u202Eb", "a\u200Bb", "a\0b", "x".repeat(256)]
  ) {
    assert.ok(badFileName(bad), JSON.stringify(bad));
  }
  for (const good of ["report.pdf", "naïve résumé.txt", ".hidden", "日本.txt"]) {
    assert.equal(badFileName(good), null, good);
  }
});

Deno.test("classify: a file is a command only through its caption", () => {
  const facts = (content: Record<string, unknown>) => ({
    sender: "@op:x",
    encrypted: true,
    type: "m.room.message",
    content,
    roomId: "!r:x",
  });
  const file = { url: "mxc://x/y" };
  const put = classify(
    facts({ msgtype: "m.file", body: "$ put /srv/f", filename: "a.txt", file, info: { size: 3 } }),
    "@agent:x",
    null,
  );
  assert.deepEqual(put, {
    kind: "command",
    text: "put /srv/f",
    attachment: { name: "a.txt", size: 3, file },
  });
  const shared = classify(facts({ msgtype: "m.file", body: "a.txt", file }), "@agent:x", null);
  assert.equal(shared.kind, "ignore");
  const clear = classify(
    facts({ msgtype: "m.image", body: "$ put /srv", filename: "p.png", url: "mxc://x/z" }),
    "@agent:x",
    null,
  );
  assert.deepEqual(clear.kind === "command" && clear.attachment?.file, null);
});

Deno.test("exec-user helpers: the opened file is judged, not the name; a put is whole or absent", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tibet-nc-fd-" });
  const out = await Deno.makeTempDir({ prefix: "tibet-nc-out-" });
  try {
    await Deno.writeTextFile(`${dir}/a.txt`, "hello\n");
    await Deno.writeTextFile(`${out}/secret`, "secret\n");
    await Deno.symlink(`${out}/secret`, `${dir}/link`);
    await new Deno.Command("mkfifo", { args: [`${dir}/fifo`] }).output();
    const judge = (real: string) =>
      real.startsWith(`${dir}/`) ? null : new FileError("deny.file.path", `outside: ${real}`);
    const f = await openForGet({}, `${dir}/a.txt`, 100, judge);
    assert.deepEqual([f.realPath, f.size, await new Response(f.body).text()], [
      `${dir}/a.txt`,
      6,
      "hello\n",
    ]);
    await assert.rejects(openForGet({}, `${dir}/link`, 100, judge), /outside: .*secret/);
    await assert.rejects(openForGet({}, `${dir}/fifo`, 100, judge), /not a regular file/);
    await assert.rejects(openForGet({}, `${dir}/a.txt`, 5, judge), /limit is 5/);

    const w = await prepareForPut({}, dir, "new.bin");
    assert.deepEqual([w.realDir, w.name, w.exists], [await Deno.realPath(dir), "new.bin", false]);
    const failing = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new Uint8Array(10));
      },
      pull(c) {
        c.error(new FileError("deny.file.hash", "no match"));
      },
    });
    await assert.rejects(w.write(failing), /no match/);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "a.txt",
      "fifo",
      "link",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(out, { recursive: true });
  }
});
