/**
 * get, put and output.txt through the real agent and a real Synapse: bytes
 * survive both ways (SHA-256 compared), the media repository holds only
 * ciphertext, every bad input is refused with its reason and leaves no file,
 * and nothing outside the file dirs is read or written (canaries).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { startWorld, TEST_PROGRAMS } from "./support/fixture.ts";
import { rawMedia, receiveFile, sendFile } from "./support/operator_files.ts";
import { runMain } from "./support/cli.ts";
import { startOperator } from "./support/operator.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const isRoot = Deno.uid() === 0;
const MAX = 6 * 1024 * 1024;

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

function random(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
}

/** True if `needle` occurs in `hay`. */
function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

const listing = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();

Deno.test("files: get, put and output.txt as encrypted attachments", opts, async (t) => {
  const files = await Deno.makeTempDir({ prefix: "tibet-nc-files-" });
  const secret = await Deno.makeTempDir({ prefix: "tibet-nc-secret-" });
  await Deno.chmod(files, 0o777); // the exec user (nobody) reads and writes here
  await Deno.chmod(secret, 0o777); // reachable by permissions: only the file dirs keep it out
  const canary = `canary-${crypto.randomUUID()}`;
  await Deno.writeTextFile(`${secret}/secret.txt`, canary);
  const w = await startWorld(
    {
      TIBET_NC_FILE_DIRS: files,
      TIBET_NC_MAX_FILE_BYTES: String(MAX),
      TIBET_NC_RATE_LIMIT: "1000", // some 40 messages in a minute or two
      ...(isRoot ? { TIBET_NC_EXEC_AS_SELF: "no", TIBET_NC_EXEC_USER: "nobody" } : {}),
    },
    [...TEST_PROGRAMS, "seq"],
    (binDir) => Deno.chmod(binDir, 0o755),
  );
  try {
    const { operator } = w;
    const client = operator.client;
    const room = await operator.createRoom([w.agentUser.userId]);
    await operator.waitForJoin(room, w.agentUser.userId);
    const ask = async (text: string) => {
      const id = await operator.send(room, `$ ${text}`);
      return { id, body: await operator.waitForFinal(room, id, 120_000) };
    };
    const put = async (bytes: Uint8Array, name: string, caption: string, o = {}) => {
      const id = await sendFile(client, room, bytes, name, caption, o);
      return await operator.waitForFinal(room, id, 120_000);
    };
    const fileOf = async (id: string) => {
      const deadline = Date.now() + 60_000;
      while (operator.fileReplies(room, id).length === 0) {
        if (Date.now() > deadline) throw new Error(`no file replied to ${id}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      return await receiveFile(client, operator.fileReplies(room, id)[0]);
    };

    await t.step(
      "get: a 5 MB binary file arrives byte for byte; the homeserver holds ciphertext",
      async () => {
        const data = random(5 * 1024 * 1024);
        await Deno.writeFile(`${files}/blob.bin`, data, { mode: 0o644 });
        const { id, body } = await ask(`get ${files}/blob.bin`);
        assert.match(
          body,
          new RegExp(`^sent ${files}/blob.bin · 5\\.2 MB · sha256 ${sha256(data)}`),
        );
        const got = await fileOf(id);
        assert.equal(got.name, "blob.bin");
        assert.equal(sha256(got.bytes), sha256(data));
        const raw = await rawMedia(client, got.mxc);
        assert.equal(raw.length, data.length);
        assert.ok(!contains(raw.subarray(0, 1 << 20), data.subarray(4096, 4096 + 32)));
        assert.notEqual(sha256(raw), sha256(data));
      },
    );

    await t.step(
      "put: a 5 MB binary file is written byte for byte, atomically, as the exec user",
      async () => {
        const data = random(5 * 1024 * 1024);
        const body = await put(data, "up.bin", `$ put ${files}`);
        assert.match(
          body,
          new RegExp(`^wrote ${files}/up.bin · 5\\.2 MB · sha256 ${sha256(data)}`),
        );
        assert.equal(sha256(await Deno.readFile(`${files}/up.bin`)), sha256(data));
        if (isRoot) {
          assert.equal((await Deno.stat(`${files}/up.bin`)).uid, 65534, "written as nobody");
        }
        assert.ok(
          !listing(files).some((n) => n.includes(".tmp")),
          "no temporary file left",
        );
      },
    );

    await t.step("put: an existing file is kept unless --replace", async () => {
      const first = new TextEncoder().encode("first version\n");
      const second = new TextEncoder().encode("second version\n");
      assert.match(await put(first, "notes.txt", `$ put ${files}`), /^wrote /);
      assert.match(
        await put(second, "notes.txt", `$ put ${files}`),
        /deny\.file\.exists.*--replace/,
      );
      assert.equal(await Deno.readTextFile(`${files}/notes.txt`), "first version\n");
      assert.match(await put(second, "x", `$ put --replace ${files}/notes.txt`), /^wrote /);
      assert.equal(await Deno.readTextFile(`${files}/notes.txt`), "second version\n");
    });

    await t.step("output.txt: a long output is attached whole", async () => {
      const { id, body } = await ask("seq 1 200000");
      assert.match(body, /complete output in output\.txt/);
      const got = await fileOf(id);
      assert.equal(got.name, "output.txt");
      const lines = new TextDecoder().decode(got.bytes).trimEnd().split("\r\n");
      assert.equal(lines.length, 200000);
      assert.equal(lines.at(-1), "200000");
      // The terminal's bytes unchanged: their SHA-256 is the one the result record signed.
      const seq = Number(body.match(/#(\d+)$/m)![1]);
      const records = (await Deno.readTextFile(`${w.stateDir}/audit.jsonl`)).trim().split("\n")
        .map((l) => JSON.parse(l));
      assert.equal(records.find((r) => r.seq === seq).token.erin, sha256(got.bytes));
    });

    await t.step(
      "bad gets are refused with their reason; nothing outside the dirs is read",
      async () => {
        await Deno.symlink(`${secret}/secret.txt`, `${files}/planted-link`);
        await Deno.mkdir(`${files}/sub`);
        await Deno.writeFile(`${files}/empty`, new Uint8Array());
        await Deno.writeFile(`${files}/over`, new Uint8Array(MAX + 1));
        await new Deno.Command("mkfifo", { args: [`${files}/fifo`] }).output();
        const cases: [string, RegExp][] = [
          [`get ${files}/../${secret.split("/").pop()}/secret.txt`, /deny\.file\.path/],
          [`get ${secret}/secret.txt`, /deny\.file\.path.*outside the file dirs/],
          [`get ${files}/planted-link`, /deny\.file\.path.*real path/],
          [`get ${files}/sub`, /deny\.file\.type/],
          [`get ${files}/fifo`, /deny\.file\.type/],
          ["get /proc/self/environ", /deny\.file\.type/],
          [`get ${files}/empty`, /deny\.file\.empty/],
          [`get ${files}/over`, /deny\.file\.size.*TIBET_NC_MAX_FILE_BYTES/],
          [`get ${files}/missing`, /deny\.file\.read.*no such file/],
          ["get relative/path", /deny\.file\.path.*not an absolute path/],
          [`get ${files}/a ${files}/b`, /deny\.file\.usage/],
        ];
        for (const [text, want] of cases) {
          const { id, body } = await ask(text);
          assert.match(body, want, `${text}: ${body}`);
          assert.match(body, /^TIBET: /m, `${text}: recorded`);
          assert.equal(operator.fileReplies(room, id).length, 0, `${text}: a file was sent`);
          assert.ok(!body.includes(canary));
        }
      },
    );

    await t.step("bad puts are refused with their reason and leave no file", async () => {
      await Deno.symlink(secret, `${files}/out-link`);
      const before = listing(files);
      const data = new TextEncoder().encode("payload\n");
      const cases: [Uint8Array, string, string, object, RegExp][] = [
        [data, "x.txt", `$ put ${files}/out-link`, {}, /deny\.file\.path.*real path/],
        [data, "x.txt", `$ put ${secret}`, {}, /deny\.file\.path/],
        [data, "a\nb.txt", `$ put ${files}`, {}, /deny\.file\.name.*control/],
        [data, "evil\u202Etxt.exe", `$ put ${files}`, {}, /deny\.file\.name/],
        [data, "..", `$ put ${files}`, {}, /deny\.file\.name/],
        [data, "x.txt", `$ put ${files}/../x.txt`, {}, /deny\.file\.path/],
        [data, "plain.txt", `$ put ${files}`, { encrypted: false }, /deny\.file\.unencrypted/],
        [random(300_000), "t.bin", `$ put ${files}`, { tamper: true }, /deny\.file\.hash.*SHA-256/],
        [new Uint8Array(MAX + 1), "big.bin", `$ put ${files}`, {}, /deny\.file\.size/],
        [
          new Uint8Array(MAX + 1),
          "liar.bin",
          `$ put ${files}`,
          { announcedSize: 10 },
          /deny\.file\.size/,
        ],
        // Synapse takes no empty upload, so the emptiness is announced.
        [data, "empty.bin", `$ put ${files}`, { announcedSize: 0 }, /deny\.file\.empty/],
        [data, "x.txt", `$ ls ${files}`, {}, /deny\.file\.attachment.*put/],
      ];
      for (const [bytes, name, caption, o, want] of cases) {
        const body = await put(bytes, name, caption, o);
        assert.match(body, want, `${caption} ${JSON.stringify(name)}: ${body}`);
        assert.match(body, /^TIBET: /m, `${caption}: recorded`);
      }
      const { body } = await ask(`put ${files}`);
      assert.match(body, /deny\.file\.attachment.*caption/);
      assert.deepEqual(listing(files), before, "a refused put left a file");
      assert.deepEqual(listing(secret), ["secret.txt"], "a put wrote outside the file dirs");
    });

    await t.step("a put from a device its owner did not cross-sign writes nothing", async () => {
      const before = listing(files);
      const login = await w.synapse.login(w.operatorUser.userId, w.operatorUser.password);
      const unsigned = await startOperator(w.synapse.url, login, false);
      try {
        await unsigned.waitForRoom(room);
        await new Promise((r) => setTimeout(r, 1000)); // let it see the room's members' devices
        const data = new TextEncoder().encode("from an unsigned device\n");
        const id = await sendFile(unsigned.client, room, data, "unsigned.txt", `$ put ${files}`);
        const reply = await operator.waitForReply(room, id, 60_000);
        assert.match(reply.getContent().body, /refused \(deny\.device\)/);
        // The agent judges the device again with fresh keys before it refuses: give it time.
        const deadline = Date.now() + 60_000;
        while (!/deny\.device/.test(await Deno.readTextFile(`${w.stateDir}/audit.jsonl`))) {
          assert.ok(Date.now() < deadline, "the refusal was not recorded");
          await new Promise((r) => setTimeout(r, 500));
        }
        assert.deepEqual(listing(files), before, "the unsigned device's put wrote a file");
      } finally {
        unsigned.stop();
      }
    });

    await t.step("the audit log binds path, size and SHA-256, and verifies", async () => {
      const records = (await Deno.readTextFile(`${w.stateDir}/audit.jsonl`)).trim().split("\n")
        .map((l) => JSON.parse(l));
      const fileOps = records.map((r) => JSON.parse(r.token.eromheen).file).filter(Boolean);
      const get = fileOps.find((f) => f.op === "get" && f.path === `${files}/blob.bin`);
      assert.equal(get.bytes, 5 * 1024 * 1024);
      assert.match(get.sha256, /^[0-9a-f]{64}$/);
      assert.ok(fileOps.some((f) => f.op === "put" && f.path === `${files}/up.bin`));
      assert.ok(fileOps.some((f) => f.name === "output.txt" && f.bytes > 1_000_000));
      const verify = await runMain(["audit", "verify", "--log", `${w.stateDir}/audit.jsonl`]);
      assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    });
  } finally {
    await w.close();
    await Deno.remove(files, { recursive: true });
    await Deno.remove(secret, { recursive: true });
  }
});
