import assert from "node:assert/strict";
import { generateX25519Identity, identityToRecipient } from "age-encryption";
import { openAuditLog } from "../lib/audit/log.ts";
import { loadOrCreateSigningKey } from "../lib/audit/signing_key.ts";
import { loadConfig } from "../lib/config/config.ts";
import { requestHandler } from "../lib/monitor/requests.ts";
import type { ToWorker } from "../lib/monitor/protocol.ts";
import { loadPolicy } from "../lib/policy/policy_file.ts";
import { openRecorder } from "../lib/recording/recorder.ts";
import { makeBinDir } from "./support/fixture.ts";
import { runMain } from "./support/cli.ts";

/**
 * The monitor's real command path (policy, audit log, run, recorder) without
 * Matrix, then `tibet-nc audit replay` as a process on what it left.
 */
Deno.test("audit replay: the output comes back only with the right identity, untampered, bound to its signed record", async (t) => {
  const state = await Deno.makeTempDir({ prefix: "tibet-nc-state-" });
  const binDir = await makeBinDir(["printf", "true"]);
  try {
    const identity = await generateX25519Identity();
    const pubkey = await identityToRecipient(identity);
    const idFile = `${state}/../${crypto.randomUUID()}-id.txt`;
    await Deno.writeTextFile(idFile, `# created: now\n# public key: ${pubkey}\n${identity}\n`);
    const wrongFile = `${idFile}.wrong`;
    await Deno.writeTextFile(wrongFile, `${await generateX25519Identity()}\n`);
    const config = loadConfig({
      MATRIX_HOMESERVER: "http://127.0.0.1:9",
      TIBET_NC_USER_ID: "@agent:localhost",
      TIBET_NC_ACCESS_TOKEN: "token",
      TIBET_NC_ALLOWED_USERS: "@op:localhost",
      TIBET_NC_STATE_DIR: state,
      TIBET_NC_BIN_DIR: binDir,
      TIBET_NC_EXEC_AS_SELF: "yes",
      TIBET_NC_RECORD_PUBKEY: pubkey,
      TIBET_NC_FULL_OUTPUT_BYTES: "64",
    });
    const policy = await loadPolicy();
    const key = await loadOrCreateSigningKey(`${state}/signing_key.jwk`);
    const audit = await openAuditLog(`${state}/audit.jsonl`, key);
    const logged: string[] = [];
    const log = (m: string) => logged.push(m);
    const recorder = await openRecorder({
      dir: `${state}/recordings`,
      pubkey,
      keepDays: 30,
      maxBytes: 1 << 20,
      log,
    });
    const exec = { uid: null, gid: null, name: "self", home: "/tmp" };
    const sent: ToWorker[] = [];
    const on = requestHandler(
      { config, policy, exec, audit, log, recorder, realFileDirs: [] },
      (m) => sent.push(m),
    );
    const off = requestHandler(
      { config, policy, exec, audit, log, realFileDirs: [] },
      (m) => sent.push(m),
    );
    let n = 0;
    /** Runs `text`; the seq of its reply's provenance line. */
    const run = async (handler: typeof on, text: string): Promise<number> => {
      n++;
      await handler.handle({
        type: "run",
        id: n,
        origin: { sender: "@op:localhost", roomId: "!r:localhost", eventId: `$e${n}`, text },
      });
      const final = sent.findLast((m) => m.type === "final" && m.id === n);
      assert.ok(final?.type === "final", JSON.stringify(sent));
      return Number(final.parts.tail!.match(/\| #(\d+)$/)![1]);
    };
    const canary = `replay-canary-${crypto.randomUUID().slice(0, 8)}`;
    const shown = await run(on, `printf %s-%s ${canary} end`);
    const long = await run(on, `printf %s ${"L".repeat(200)}`);
    const unrecorded = await run(off, `printf unrecorded`);
    const refused = await run(on, `rm -rf /`);
    await audit.close();
    assert.deepEqual(logged.filter((l) => /recording/.test(l)), []);
    const replay = (seq: number | string, id = idFile, more: string[] = []) =>
      runMain([
        "audit",
        "replay",
        String(seq),
        "--identity",
        id,
        "--log",
        `${state}/audit.jsonl`,
        ...more,
      ]);

    await t.step(
      "the #N of the reply gives back the exact output; so does the execute seq",
      async () => {
        const r = await replay(shown);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, `${canary}-end`);
        assert.match(r.stderr, new RegExp(`^ok: command #${shown - 1} \\(result #${shown}\\): `));
        const byExecute = await replay(`#${shown - 1}`);
        assert.equal(byExecute.stdout, `${canary}-end`);
      },
    );

    await t.step("the recording file holds no plaintext", async () => {
      const file = await Deno.readTextFile(`${state}/recordings/${shown - 1}.age`);
      assert.ok(!file.includes(canary));
    });

    await t.step(
      "output past TIBET_NC_FULL_OUTPUT_BYTES replays its start, said to be truncated",
      async () => {
        const r = await replay(long);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, "L".repeat(64));
        assert.match(r.stderr, /TRUNCATED recording, the first 64 of 200 bytes/);
      },
    );

    await t.step("a wrong identity fails with exit 4 and prints nothing", async () => {
      const r = await replay(shown, wrongFile);
      assert.equal(r.code, 4);
      assert.equal(r.stdout, "");
      assert.match(r.stderr, /is not encrypted to this identity/);
    });

    await t.step("no such record, a refusal, recording off: exit 3, each said", async () => {
      const none = await replay(999);
      assert.equal(none.code, 3);
      assert.match(none.stderr, /no record #999: the audit log ends at #/);
      const deny = await replay(refused);
      assert.equal(deny.code, 3);
      assert.match(deny.stderr, /nc\.airlock\.deny record, not a command that ran/);
      const offR = await replay(unrecorded);
      assert.equal(offR.code, 3);
      assert.match(offR.stderr, /recording was off when it ran \(TIBET_NC_RECORD_PUBKEY unset\)/);
    });

    await t.step(
      "a replaced recording (valid age, other content) fails the signed hash: exit 1",
      async () => {
        const path = `${state}/recordings/${shown - 1}.age`;
        const original = await Deno.readFile(path);
        await Deno.copyFile(`${state}/recordings/${long - 1}.age`, path);
        const r = await replay(shown);
        assert.equal(r.code, 1);
        assert.equal(r.stdout, "");
        assert.match(r.stderr, /is not the recording the signed record #\d+ describes .*replaced/);
        const flipped = original.slice();
        flipped[flipped.length - 5] ^= 0x01;
        await Deno.writeFile(path, flipped);
        const t2 = await replay(shown);
        assert.equal(t2.code, 1);
        assert.match(t2.stderr, /does not decrypt: it was changed or damaged/);
        await Deno.remove(path);
        const gone = await replay(shown);
        assert.equal(gone.code, 3);
        assert.match(gone.stderr, /is gone: deleted by retention/);
        await Deno.writeFile(path, original);
      },
    );

    await t.step("an edited record fails verification: exit 1", async () => {
      const logPath = `${state}/audit.jsonl`;
      const text = await Deno.readTextFile(logPath);
      const lines = text.split("\n");
      lines[shown - 1] = lines[shown - 1].replace(/"exit_code\\":0/, '"exit_code\\":1');
      assert.notEqual(lines.join("\n"), text, "the edit took");
      await Deno.writeTextFile(logPath, lines.join("\n"));
      const r = await replay(shown);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, "");
      assert.match(r.stderr, new RegExp(`fails verification at record #${shown}: `));
    });

    await t.step("usage errors: exit 2", async () => {
      assert.equal((await runMain(["audit", "replay", "--identity", idFile])).code, 2);
      assert.equal((await runMain(["audit", "replay", "1"])).code, 2);
      assert.equal((await replay("x1")).code, 2);
    });
    await Deno.remove(idFile);
    await Deno.remove(wrongFile);
  } finally {
    await Deno.remove(state, { recursive: true });
    await Deno.remove(binDir, { recursive: true });
  }
});
