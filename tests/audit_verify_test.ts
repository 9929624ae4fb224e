import assert from "node:assert/strict";
import { auditCommand } from "../lib/cli/audit.ts";
import { runMain } from "./support/cli.ts";
import { recordL4 } from "../lib/audit/chain.ts";
import type { JsonObject } from "../lib/audit/canonical_json.ts";
import { type AuditRecord, openAuditLog } from "../lib/audit/log.ts";
import { buildRecord, formatRecord } from "../lib/audit/record.ts";
import { loadOrCreateSigningKey, type SigningKey } from "../lib/audit/signing_key.ts";
import {
  type LogSource,
  verifyLog as verifyIn,
  type VerifyOptions,
  type VerifyResult,
} from "../lib/audit/verify.ts";

const N = 12;
const K = 6; // the "middle" record

/** A log of N records: commands, their results (some interleaved), a refusal. */
async function makeLog(dir: string, name: string, key: SigningKey): Promise<string[]> {
  const path = `${dir}/${name}`;
  const log = await openAuditLog(path, key, { sync: false });
  const cmd = (text: string) =>
    log.append({
      token_type: "nc.command.execute",
      actor: "@zoë:example.org",
      erin: text,
      eraan: ["$ev:example.org"],
      eromheen: { hostname: "web1" },
      erachter: "diagnose ✓ 日本",
    });
  while (log.head().seq < N) {
    const a = await cmd(`uptime ${log.head().seq}`);
    const b = await cmd(`df -h ${log.head().seq}`);
    await log.appendResult(b, { exit_code: 0, duration_ms: 3, output: "ok" });
    await log.appendResult(a, { exit_code: 1, duration_ms: 9 });
    await log.append({
      token_type: "nc.airlock.deny",
      actor: "@mallory:example.org",
      erin: "reboot",
      eromheen: { verdict: "deny: shutdown family" },
      erachter: "refused by policy",
    });
  }
  await log.close();
  const lines = (await Deno.readTextFile(path)).trimEnd().split("\n").slice(0, N);
  await Deno.writeTextFile(path, lines.join("\n") + "\n");
  return lines;
}

const DIR = await Deno.makeTempDir({ prefix: "tibet-nc-verify-" });
const KEY = await loadOrCreateSigningKey(`${DIR}/k.jwk`);
const OTHER_KEY = await loadOrCreateSigningKey(`${DIR}/other.jwk`);
const LINES = await makeLog(DIR, "audit.jsonl", KEY);
const OTHER_LINES = await makeLog(DIR, "other.jsonl", KEY);
const RECORDS: AuditRecord[] = LINES.map((l) => JSON.parse(l));
const HEAD = RECORDS[N - 1].l4;

globalThis.addEventListener("unload", () => Deno.removeSync(DIR, { recursive: true }));

const join = (lines: string[]) => lines.join("\n") + "\n";

/**
 * Every verdict of this file, reached twice: in this thread, and with the log
 * split over 3 Workers (about 4 lines each, so links and faults fall on chunk
 * edges too). The two must agree.
 */
async function verifyLog(source: LogSource, opts?: VerifyOptions): Promise<VerifyResult> {
  const one = await verifyIn(source, opts, { threads: 1 });
  const split = await verifyIn(source, opts, { threads: 3 });
  assert.deepEqual(split, one, "the verdict depends on how the log was split over threads");
  return one;
}

function assertFailsAt(result: VerifyResult, seq: number, what: string): void {
  assert.equal(result.ok, false, `${what}: not detected`);
  if (!result.ok) assert.equal(result.firstBadSeq, seq, `${what}: ${result.reason}`);
}

/** Re-chains records from index `from` on, as an attacker without the key could. */
async function rechain(records: AuditRecord[], from: number): Promise<string[]> {
  for (let i = from; i < records.length; i++) {
    if (i > 0) records[i].l4_prev = records[i - 1].l4;
    records[i].l4 = await recordL4(records[i] as unknown as JsonObject & { l4_prev: string });
  }
  return records.map(formatRecord);
}

Deno.test("verify: an intact log verifies, with its head", async () => {
  const result = await verifyLog(join(LINES), { pubkeyHex: KEY.publicKeyHex });
  assert.deepEqual(result, {
    ok: true,
    count: N,
    head: HEAD,
    chainId: RECORDS[0].chain_id,
    pubkeyHex: KEY.publicKeyHex,
  });
  assert.deepEqual(await verifyLog({ path: `${DIR}/audit.jsonl` }), result);
  assert.deepEqual(await verifyLog(new TextEncoder().encode(join(LINES))), result);
  assert.ok(RECORDS.some((r) => r.parent_seq !== undefined && r.parent_seq !== r.seq - 1));
});

Deno.test("verify: deleted records (first, middle, last against an external head)", async () => {
  assertFailsAt(await verifyLog(join(LINES.slice(1))), 1, "delete first");
  assertFailsAt(await verifyLog(join(LINES.toSpliced(K - 1, 1))), K, "delete middle");
  assertFailsAt(await verifyLog(join(LINES.toSpliced(K - 1, 3))), K, "delete three");
  const shortened = join(LINES.slice(0, -1));
  // Without a head kept elsewhere, losing the end cannot be told from a shorter log.
  assert.equal((await verifyLog(shortened)).ok, true);
  assertFailsAt(await verifyLog(shortened, { expectHead: HEAD }), N, "delete last, full head");
  assertFailsAt(await verifyLog(shortened, { expectHead: HEAD.slice(0, 8) }), N, "short head");
  assertFailsAt(await verifyLog(shortened, { expectCount: N }), N, "delete last, count");
  assertFailsAt(await verifyLog("", { expectCount: 1 }), 1, "everything deleted");
  // A head seen earlier is still found after the log has grown.
  assert.equal((await verifyLog(join(LINES), { expectHead: RECORDS[3].l4 })).ok, true);
  const both = { expectHead: RECORDS[3].l4, expectCount: 4 };
  assert.equal((await verifyLog(join(LINES), both)).ok, true);
  assertFailsAt(await verifyLog(join(LINES), { ...both, expectCount: 5 }), 5, "head at other seq");
  assert.deepEqual(await verifyLog(""), {
    ok: true,
    count: 0,
    head: null,
    chainId: null,
    pubkeyHex: null,
  });
});

Deno.test("verify: inserted records", async () => {
  assertFailsAt(await verifyLog(join(LINES.toSpliced(K, 0, LINES[K - 1]))), K + 1, "duplicate");
  assertFailsAt(await verifyLog(join(LINES.toSpliced(K, 0, OTHER_LINES[K]))), K + 1, "foreign");
  assertFailsAt(
    await verifyLog(join([...LINES, OTHER_LINES[N - 1]])),
    N + 1,
    "foreign record at the end",
  );
  // A forger without the key: a record signed by another key, chained correctly,
  // and everything after it renumbered and re-chained.
  const records: AuditRecord[] = LINES.map((l) => JSON.parse(l));
  const prev = records[K - 1];
  const forged = await buildRecord(
    { chainId: prev.chain_id, seq: prev.seq, l4: prev.l4, tokenId: prev.token.id },
    {
      token_type: "nc.command.execute",
      actor: "@zoë:example.org",
      erin: "x",
      eraan: [],
      eromheen: {},
      erachter: "y",
    },
    OTHER_KEY,
  );
  const after = records.slice(K).map((r) => ({ ...r, seq: r.seq + 1 }));
  const rewritten = await rechain([...records.slice(0, K), forged, ...after], K + 1);
  assertFailsAt(await verifyLog(join(rewritten)), K + 1, "forged insert");
});

Deno.test("verify: reordered records", async () => {
  const swap = (i: number, j: number) => {
    const copy = [...LINES];
    [copy[i - 1], copy[j - 1]] = [copy[j - 1], copy[i - 1]];
    return join(copy);
  };
  assertFailsAt(await verifyLog(swap(K, K + 1)), K, "swap neighbours");
  assertFailsAt(await verifyLog(swap(2, 9)), 2, "swap far apart");
  assertFailsAt(await verifyLog(swap(N - 1, N)), N - 1, "swap the last two");
  assertFailsAt(await verifyLog(join([LINES[N - 1], ...LINES.slice(0, -1)])), 1, "rotate");
});

Deno.test("verify: an edit of any field of a record is found at that record", async () => {
  const target = RECORDS.findIndex((r, i) => i >= K - 1 && r.parent_seq !== undefined) + 1;
  const edits: Record<string, (r: Record<string, unknown>) => unknown> = {
    v: () => 2,
    seq: (r) => (r.seq as number) + 1,
    chain_id: () => "00000000-0000-4000-8000-000000000000",
    l4_prev: (r) => flipHex(r.l4_prev as string),
    l4: (r) => flipHex(r.l4 as string),
    parent_seq: (r) => (r.parent_seq as number) - 1,
  };
  const tokenEdits: Record<string, (t: Record<string, unknown>) => unknown> = {
    id: () => crypto.randomUUID(),
    timestamp: () => "2030-01-01T00:00:00.000Z",
    token_type: () => "nc.command.execute",
    actor: () => "@zoe:example.org",
    erin: (t) => flipHex(t.erin as string),
    eraan: () => ["$other:example.org"],
    eromheen: (t) => (t.eromheen as string).replace("exit_code", "exit_cod"),
    erachter: () => "diagnose ✓ 日",
    parent_id: () => RECORDS[0].token.id,
    state: () => "Revoked",
    signature: (t) => flipHex(t.signature as string),
    signer_pubkey: () => OTHER_KEY.publicKeyHex,
    content_hash: (t) => flipHex(t.content_hash as string),
  };
  const record = RECORDS[target - 1] as unknown as Record<string, unknown>;
  assert.deepEqual(Object.keys(edits).concat("token").sort(), Object.keys(record).sort());
  assert.deepEqual(Object.keys(tokenEdits).sort(), Object.keys(record.token as object).sort());
  const cases: [string, (r: Record<string, unknown>) => void][] = [
    ...Object.entries(edits).map(([f, edit]): [string, (r: Record<string, unknown>) => void] => [
      f,
      (r) => (r[f] = edit(r)),
    ]),
    ...Object.entries(tokenEdits).map((
      [f, edit],
    ): [string, (r: Record<string, unknown>) => void] => [
      `token.${f}`,
      (r) => {
        const t = r.token as Record<string, unknown>;
        t[f] = edit(t);
      },
    ]),
  ];
  for (const [field, edit] of cases) {
    const records: AuditRecord[] = LINES.map((l) => JSON.parse(l));
    edit(records[target - 1] as unknown as Record<string, unknown>);
    const edited = records.map(formatRecord);
    assert.notEqual(edited[target - 1], LINES[target - 1], field);
    assertFailsAt(await verifyLog(join(edited)), target, `edit of ${field}`);
    if (field === "l4" || field === "l4_prev") continue; // re-chaining undoes these
    // The same edit by someone who also recomputes every l4 from there on.
    const rechained = await rechain(records, target - 1);
    assertFailsAt(await verifyLog(join(rechained)), target, `edit of ${field}, re-chained`);
  }
  // Re-rooting the chain under another chain_id breaks the signed l4_prev of record 1.
  const records: AuditRecord[] = LINES.map((l) => JSON.parse(l));
  for (const r of records) r.chain_id = "00000000-0000-4000-8000-000000000000";
  const { genesisL4 } = await import("../lib/audit/chain.ts");
  records[0].l4_prev = await genesisL4(records[0].chain_id);
  assertFailsAt(await verifyLog(join(await rechain(records, 0))), 1, "re-rooted chain");
});

function flipHex(hex: string): string {
  return (hex[0] === "0" ? "1" : "0") + hex.slice(1);
}

Deno.test("verify: one flipped byte anywhere changes the verdict (50 places)", async () => {
  const bytes = new TextEncoder().encode(join(LINES));
  const seed = Date.now() % 2 ** 31;
  let state = seed;
  const random = () => {
    // mulberry32: reproducible from the seed printed on failure
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const positions = new Set([0, bytes.length - 1, bytes.indexOf(0x0a)]);
  while (positions.size < 50) positions.add(Math.floor(random() * bytes.length));
  for (const pos of positions) {
    const copy = bytes.slice();
    copy[pos] ^= 1 + Math.floor(random() * 255);
    const lineOfPos = bytes.subarray(0, pos).filter((b) => b === 0x0a).length + 1;
    assertFailsAt(await verifyLog(copy), lineOfPos, `byte ${pos} flipped (seed ${seed})`);
  }
});

Deno.test("verify: truncation, a wrong key, foreign line endings", async () => {
  const text = join(LINES);
  assertFailsAt(await verifyLog(text.slice(0, -1)), N, "final newline removed");
  assertFailsAt(await verifyLog(text.slice(0, -40)), N, "last line cut");
  const cut = Math.floor(text.length / 2);
  const cutLine = text.slice(0, cut).split("\n").length;
  assertFailsAt(await verifyLog(text.slice(0, cut)), cutLine, "cut midway");
  const wrong = await verifyLog(text, { pubkeyHex: OTHER_KEY.publicKeyHex });
  assertFailsAt(wrong, 1, "wrong pubkey");
  assert.ok(!wrong.ok && wrong.reason.includes(OTHER_KEY.publicKeyHex));
  assertFailsAt(await verifyLog(LINES.join("\r\n") + "\r\n"), 1, "CRLF");
  assertFailsAt(await verifyLog(text + "\n"), N + 1, "blank line");
  const bad = new Uint8Array([...new TextEncoder().encode(text), 0xff, 0x0a]);
  assertFailsAt(await verifyLog(bad), N + 1, "not UTF-8");
  await assert.rejects(verifyLog(text, { pubkeyHex: "XYZ" }), TypeError);
  await assert.rejects(verifyLog(text, { expectHead: "abc" }), TypeError);
});

/** Runs auditCommand capturing what it prints. */
async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    const code = await auditCommand(args);
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    Object.assign(console, { log, error });
  }
}

Deno.test("audit CLI: verify exit codes and messages", async () => {
  const path = `${DIR}/audit.jsonl`;
  const ok = await cli(["verify", "--log", path]);
  assert.equal(ok.code, 0);
  assert.equal(ok.out.split("\n")[0], `ok: ${N} records, head ${HEAD}`);
  assert.equal((await cli(["verify", `--log=${path}`, "--pubkey", KEY.publicKeyHex])).code, 0);
  const wrongKey = await cli(["verify", "--log", path, "--pubkey", OTHER_KEY.publicKeyHex]);
  assert.equal(wrongKey.code, 1);
  assert.match(wrongKey.out, /^FAIL at record #1: /);
  assert.equal((await cli(["verify", "--log", path, "--head", HEAD.slice(0, 10)])).code, 0);
  assert.equal((await cli(["verify", "--log", path, "--count", String(N + 1)])).code, 1);
  const threads = await cli(["verify", "--log", path, "--threads", "3"]);
  assert.equal(threads.out, ok.out);

  const tampered = `${DIR}/tampered.jsonl`;
  await Deno.writeTextFile(tampered, join(LINES.toSpliced(K - 1, 1)));
  const fail = await cli(["verify", "--log", tampered]);
  assert.equal(fail.code, 1);
  assert.match(fail.out, new RegExp(`^FAIL at record #${K}: .*missing`));

  const missing = await cli(["verify", "--log", `${DIR}/nope.jsonl`]);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /no audit log at .*nope\.jsonl \(--log\): check the path/);
  assert.doesNotMatch(missing.err, /NotFound|os error|No such file/);

  // Its own process: the environment is shared by test files running in parallel.
  const fromEnv = await runMain(["audit", "verify"], { env: { TIBET_NC_STATE_DIR: DIR } });
  assert.equal(fromEnv.code, 0, fromEnv.stderr);
});

Deno.test("audit CLI: --env-file names the state dir; a missing log says what to pass", async () => {
  const envFile = `${DIR}/agent.env`;
  await Deno.writeTextFile(envFile, `TIBET_NC_STATE_DIR=${DIR}/\n`);
  const ok = await cli(["verify", "--env-file", envFile]);
  assert.equal(ok.code, 0, ok.err);
  assert.equal(ok.out.split("\n")[0], `ok: ${N} records, head ${HEAD}`);
  assert.equal((await cli(["show", "-n", "1", `--env-file=${envFile}`])).code, 0);

  const empty = await Deno.makeTempDir({ dir: DIR });
  await Deno.writeTextFile(envFile, `TIBET_NC_STATE_DIR=${empty}\n`);
  const missing = await cli(["verify", "--env-file", envFile]);
  assert.equal(missing.code, 1);
  assert.match(missing.err, new RegExp(`no audit log at ${empty}/audit\\.jsonl`));
  assert.match(missing.err, /pass its env file with --env-file FILE, or the log with --log FILE/);
  assert.doesNotMatch(missing.err, /NotFound|os error|No such file/);

  const noFile = await cli(["verify", "--env-file", `${DIR}/no.env`]);
  assert.equal(noFile.code, 1);
  assert.match(noFile.err, /cannot read .*no\.env/);
  const both = await cli(["verify", "--env-file", envFile, "--log", "x"]);
  assert.equal(both.code, 2);
  assert.match(both.err, /--log or --env-file, not both/);
});

Deno.test("audit CLI: show, help and usage errors", async () => {
  const path = `${DIR}/audit.jsonl`;
  const shown = await cli(["show", "-n", "5", "--log", path]);
  assert.equal(shown.code, 0);
  const rows = shown.out.split("\n");
  assert.equal(rows.length, 5);
  assert.ok(rows[0].startsWith(`#${N - 4} `), rows[0]);
  assert.ok(rows.at(-1)!.startsWith(`#${N} `));
  assert.ok(rows.some((r) => /nc\.command\.result \(of #\d+\).*exit 0/.test(r)), shown.out);
  assert.ok(rows.some((r) => /nc\.airlock\.deny.*deny: shutdown family/.test(r)), shown.out);
  assert.ok(rows.every((r) => /l4 [0-9a-f]{12}…$/.test(r)));
  assert.equal((await cli(["show", "--log", path])).out.split("\n").length, 10);

  const help = await cli(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.out, /Usage:/);
  assert.equal((await cli(["verify", "--help"])).code, 0);
  for (
    const args of [
      [],
      ["frobnicate"],
      ["verify", "--bogus"],
      ["verify", "--log"],
      ["verify", "--pubkey", "abc"],
      ["verify", "--head", "xyz"],
      ["verify", "--count", "-1"],
      ["verify", "--threads", "0"],
      ["verify", "--threads", "two"],
      ["show", "-n", "0"],
      ["show", "--pubkey", KEY.publicKeyHex],
    ]
  ) {
    const r = await cli(args);
    assert.equal(r.code, 2, args.join(" "));
    assert.match(r.err, /Usage:/);
  }
});

Deno.test("audit CLI: without read access to the worker module, verify still checks every record", async () => {
  const main = new URL("../main.ts", import.meta.url).pathname;
  const run = async (log: string) => {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", `--allow-read=${DIR}`, main, "audit", "verify", "--log", log, "--threads", "3"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = (b: Uint8Array) => new TextDecoder().decode(b).trim();
    return { code: r.code, out: text(r.stdout), err: text(r.stderr) };
  };
  const ok = await run(`${DIR}/audit.jsonl`);
  assert.deepEqual({ code: ok.code, err: ok.err }, { code: 0, err: "" });
  assert.equal(ok.out.split("\n")[0], `ok: ${N} records, head ${HEAD}`);
  const forged = `${DIR}/forged.jsonl`;
  const records: AuditRecord[] = LINES.map((l) => JSON.parse(l));
  records[N - 2].token.signature = flipHex(records[N - 2].token.signature);
  await Deno.writeTextFile(forged, join(records.map(formatRecord)));
  const bad = await run(forged);
  assert.equal(bad.code, 1);
  assert.equal(bad.out, `FAIL at record #${N - 1}: token signature is not valid`);
});
