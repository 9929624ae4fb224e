import assert from "node:assert/strict";
import { generateX25519Identity, identityToRecipient } from "age-encryption";
import { startWorld } from "./support/fixture.ts";
import { runMain } from "./support/cli.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "recorded output through the real agent: replay gives it back, the state dir holds only ciphertext, tampering and a wrong identity fail",
  opts,
  async (t) => {
    const identity = await generateX25519Identity();
    const pubkey = await identityToRecipient(identity);
    const keyDir = await Deno.makeTempDir({ prefix: "tibet-nc-age-" });
    const idFile = `${keyDir}/id.txt`;
    await Deno.writeTextFile(idFile, `# public key: ${pubkey}\n${identity}\n`, { mode: 0o600 });
    const wrongFile = `${keyDir}/wrong.txt`;
    await Deno.writeTextFile(wrongFile, `${await generateX25519Identity()}\n`);
    const w = await startWorld({ TIBET_NC_RECORD_PUBKEY: pubkey });
    try {
      const { operator } = w;
      const agentId = w.agentUser.userId;
      const room = await operator.createRoom([agentId]);
      await operator.waitForJoin(room, agentId);
      const canary = `recorded-canary-${crypto.randomUUID()}`;
      const id = await operator.send(room, `$ printf %s:%s ${canary} done`);
      const body = await operator.waitForFinal(room, id, 60_000);
      assert.match(body, new RegExp(`${canary}:done`));
      const seq = Number(body.match(/^TIBET: .* \| #(\d+)$/m)![1]);
      const log = `${w.stateDir}/audit.jsonl`;
      const replay = (idPath: string) =>
        runMain(["audit", "replay", `#${seq}`, "--identity", idPath, "--log", log]);

      const recordings = [...Deno.readDirSync(`${w.stateDir}/recordings`)].map((e) => e.name);
      assert.equal(recordings.length, 1, JSON.stringify(recordings));
      const file = `${w.stateDir}/recordings/${recordings[0]}`;

      await t.step("`audit replay #N --identity` prints the output and a verdict", async () => {
        const r = await replay(idFile);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, `${canary}:done`);
        assert.match(r.stderr, new RegExp(`^ok: command #\\d+ \\(result #${seq}\\): `));
      });

      await t.step(
        "the state dir holds the recording only as ciphertext, 0600 in a 0700 dir",
        async () => {
          assert.equal(Deno.statSync(`${w.stateDir}/recordings`).mode! & 0o777, 0o700);
          assert.equal(Deno.statSync(file).mode! & 0o777, 0o600);
          const bytes = await Deno.readFile(file);
          const text = new TextDecoder().decode(bytes);
          assert.ok(text.startsWith("age-encryption.org/v1\n"));
          assert.ok(!text.includes(canary), "the recording holds the output in plaintext");
          // Nothing else in the state dir keeps it either (the log has only its hash).
          for (const name of ["audit.jsonl", "seen-events", "device.json"]) {
            const other = await Deno.readTextFile(`${w.stateDir}/${name}`).catch(() => "");
            assert.ok(!other.includes(canary), `${name} holds the output`);
          }
        },
      );

      await t.step("a wrong identity fails clearly, printing nothing", async () => {
        const r = await replay(wrongFile);
        assert.equal(r.code, 4);
        assert.equal(r.stdout, "");
        assert.match(r.stderr, /not encrypted to this identity/);
      });

      await t.step(
        "one changed byte in the recording: replay fails, printing nothing",
        async () => {
          const bytes = await Deno.readFile(file);
          bytes[bytes.length - 10] ^= 0x20;
          await Deno.writeFile(file, bytes);
          const r = await replay(idFile);
          assert.equal(r.code, 1);
          assert.equal(r.stdout, "");
          assert.match(r.stderr, /^FAIL: .* does not decrypt: it was changed or damaged/);
        },
      );
    } finally {
      await w.close();
      await Deno.remove(keyDir, { recursive: true });
    }
  },
);
