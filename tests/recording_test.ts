import assert from "node:assert/strict";
import { Decrypter, generateX25519Identity, identityToRecipient } from "age-encryption";
import { sha256Hex } from "../lib/audit/hash.ts";
import { createFullOutput } from "../lib/exec/full_output.ts";
import { openRecorder, type RecorderOptions, recordingPath } from "../lib/recording/recorder.ts";

const DAY = 24 * 60 * 60 * 1000;

async function keys(): Promise<{ identity: string; pubkey: string }> {
  const identity = await generateX25519Identity();
  return { identity, pubkey: await identityToRecipient(identity) };
}

function output(text: string, cap = 1 << 20) {
  const full = createFullOutput(cap);
  full.push(new TextEncoder().encode(text));
  return full;
}

async function withDir(f: (dir: string) => Promise<void>): Promise<void> {
  const state = await Deno.makeTempDir();
  try {
    await f(`${state}/recordings`);
  } finally {
    await Deno.remove(state, { recursive: true });
  }
}

function options(dir: string, pubkey: string, more: Partial<RecorderOptions> = {}) {
  const logged: string[] = [];
  const opts: RecorderOptions = {
    dir,
    pubkey,
    keepDays: 30,
    maxBytes: 1 << 30,
    log: (m) => logged.push(m),
    ...more,
  };
  return { opts, logged };
}

Deno.test("a recording decrypts with the identity to the exact output, and holds no plaintext", async () => {
  const { identity, pubkey } = await keys();
  await withDir(async (dir) => {
    const { opts, logged } = options(dir, pubkey);
    const recorder = await openRecorder(opts);
    const canary = `recording-canary-${crypto.randomUUID()}`;
    const text = `line one\r\n${canary}\n\x1b[31mred\x1b[0m\n`;
    const fields = await recorder.save(7, output(text));
    const bytes = new TextEncoder().encode(text);
    assert.deepEqual(fields, {
      recording_sha256: sha256Hex(bytes),
      recording_bytes: bytes.length,
      recording_truncated: false,
    });
    const path = recordingPath(dir, 7);
    assert.equal(path, `${dir}/7.age`);
    assert.equal(Deno.statSync(dir).mode! & 0o777, 0o700);
    assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
    const sealed = await Deno.readFile(path);
    const asText = new TextDecoder().decode(sealed);
    assert.ok(asText.startsWith("age-encryption.org/v1\n"), "an age file");
    assert.ok(!asText.includes(canary), "the output is in the file in plaintext");
    assert.ok(!asText.includes("line one"));
    const d = new Decrypter();
    d.addIdentity(identity);
    assert.deepEqual(await d.decrypt(sealed), bytes);
    const other = new Decrypter();
    other.addIdentity((await keys()).identity);
    await assert.rejects(() => other.decrypt(sealed), /no identity matched/);
    assert.deepEqual(logged, []);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["7.age"], "no tmp left");
  });
});

Deno.test("output past the cap is recorded up to the cap, hashed as recorded, marked truncated", async () => {
  const { identity, pubkey } = await keys();
  await withDir(async (dir) => {
    const recorder = await openRecorder(options(dir, pubkey).opts);
    const fields = await recorder.save(3, output("0123456789", 4));
    assert.deepEqual(fields, {
      recording_sha256: sha256Hex("0123"),
      recording_bytes: 4,
      recording_truncated: true,
    });
    const d = new Decrypter();
    d.addIdentity(identity);
    assert.equal(await d.decrypt(await Deno.readFile(`${dir}/3.age`), "text"), "0123");
  });
});

Deno.test("retention: recordings older than keepDays go, at open and after a save", async () => {
  const { pubkey } = await keys();
  await withDir(async (dir) => {
    let now = Date.now();
    const { opts } = options(dir, pubkey, { keepDays: 2, now: () => now });
    const recorder = await openRecorder(opts);
    await recorder.save(1, output("one"));
    now += 1 * DAY;
    await recorder.save(2, output("two"));
    now += 1.5 * DAY;
    assert.deepEqual(await recorder.prune(), { expired: [1], overBytes: [] });
    now += 1 * DAY;
    await recorder.save(3, output("three"));
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["3.age"]);
    now += 3 * DAY;
    await openRecorder({ ...opts, now: () => now });
    assert.deepEqual([...Deno.readDirSync(dir)], [], "open applies retention too");
  });
});

Deno.test("retention: over maxBytes the lowest seqs go first; one too big is refused, noted, logged", async () => {
  const { pubkey } = await keys();
  await withDir(async (dir) => {
    const probe = await openRecorder(options(`${dir}-probe`, pubkey).opts);
    await probe.save(1, output("x".repeat(100)));
    const one = Deno.statSync(`${dir}-probe/1.age`).size;
    Deno.removeSync(`${dir}-probe`, { recursive: true });

    const { opts, logged } = options(dir, pubkey, { maxBytes: one * 3 });
    const recorder = await openRecorder(opts);
    // seq order, not name order: 9 is older than 10.
    for (const seq of [9, 10, 11, 12, 13]) await recorder.save(seq, output("y".repeat(100)));
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(names, ["11.age", "12.age", "13.age"]);

    const fields = await recorder.save(14, output("z".repeat(one * 4)));
    assert.match(String(fields.recording_error), /^output of #14 not recorded: .*MAX_BYTES/);
    assert.equal(fields.recording_sha256, undefined);
    assert.match(logged.join("\n"), /output of #14 not recorded/);
    const after = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(after, ["11.age", "12.age", "13.age"], "the others stay");
  });
});

Deno.test("a recording that cannot be written is an error note, not an exception", async () => {
  const { pubkey } = await keys();
  await withDir(async (dir) => {
    const { opts, logged } = options(dir, pubkey);
    const recorder = await openRecorder(opts);
    Deno.mkdirSync(`${dir}/5.age.tmp/blocker`, { recursive: true }); // tmp path is a dir
    const fields = await recorder.save(5, output("five"));
    assert.match(String(fields.recording_error), /^output of #5 not recorded: /);
    assert.equal(logged.length, 1);
  });
});
