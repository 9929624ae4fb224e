import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { AuditUnavailableError } from "../lib/audit/errors.ts";
import { type AuditLog, openAuditLog } from "../lib/audit/log.ts";
import { loadOrCreateSigningKey, type SigningKey } from "../lib/audit/signing_key.ts";
import { verifyLogFile } from "../lib/audit/verify.ts";

const sha = (text: string) => createHash("sha256").update(text, "utf8").digest("hex");
const LOG_MODULE = new URL("../lib/audit/log.ts", import.meta.url).href;
const KEY_MODULE = new URL("../lib/audit/signing_key.ts", import.meta.url).href;

interface Fixture {
  dir: string;
  path: string;
  key: SigningKey;
}

async function withLog(fn: (f: Fixture) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tibet-nc-audit-" });
  try {
    const key = await loadOrCreateSigningKey(`${dir}/signing_key.jwk`);
    await fn({ dir, path: `${dir}/audit.jsonl`, key });
  } finally {
    await Deno.chmod(dir, 0o700).catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
}

function command(log: AuditLog, text: string, actor = "@zoë:example.org") {
  return log.append({
    token_type: "nc.command.execute",
    actor,
    erin: text,
    eraan: [`$event-${sha(text).slice(0, 8)}`],
    eromheen: { hostname: "web1", room: "!ops:example.org" },
    erachter: "operator diagnostics via Matrix",
  });
}

async function lines(path: string): Promise<Record<string, unknown>[]> {
  const text = await Deno.readTextFile(path);
  assert.ok(text.endsWith("\n"));
  return text.trimEnd().split("\n").map((l) => JSON.parse(l));
}

/** Whether chmod stops this process from writing (it does not for root). */
function chmodStopsWrites(): boolean {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.chmodSync(dir, 0o500);
    Deno.writeTextFileSync(`${dir}/probe`, "x");
    return false;
  } catch {
    return true;
  } finally {
    Deno.chmodSync(dir, 0o700);
    Deno.removeSync(dir, { recursive: true });
  }
}

/** Whether `chattr +i` works here (root with CAP_LINUX_IMMUTABLE on ext4/xfs/btrfs). */
function chattrWorks(): boolean {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(`${dir}/probe`, "x");
    const set = new Deno.Command("chattr", { args: ["+i", `${dir}/probe`], stderr: "null" });
    if (!set.outputSync().success) return false;
    new Deno.Command("chattr", { args: ["-i", `${dir}/probe`] }).outputSync();
    return true;
  } catch {
    return false;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** Whether `prlimit` can run a command here (util-linux). */
function prlimitWorks(): boolean {
  try {
    return new Deno.Command("prlimit", { args: ["--fsize=1000000", "--", "true"] }).outputSync()
      .success;
  } catch {
    return false;
  }
}

const CHMOD_STOPS_WRITES = chmodStopsWrites();
const PRLIMIT_WORKS = prlimitWorks();
const CHATTR_WORKS = chattrWorks();

Deno.test("log: records chain by seq, l4 and parent_id, and verify", async () => {
  await withLog(async ({ path, key }) => {
    const log = await openAuditLog(path, key);
    assert.equal(log.head().seq, 0);
    assert.equal(log.head().l4, sha(`genesis_tibet_nc_${log.chainId}`));
    const a = await command(log, "df -h");
    const b = await command(log, "uptime");
    assert.deepEqual([a.seq, b.seq], [1, 2]);
    assert.equal(a.token.parent_id, null);
    assert.equal(b.token.parent_id, a.token.id);
    assert.equal(a.l4_prev, sha(`genesis_tibet_nc_${log.chainId}`));
    assert.equal(b.l4_prev, a.l4);
    assert.deepEqual(log.head(), { chainId: log.chainId, seq: 2, l4: b.l4, tokenId: b.token.id });
    assert.deepEqual(JSON.parse(a.token.eromheen), {
      hostname: "web1",
      room: "!ops:example.org",
      seq: 1,
      l4_prev: a.l4_prev,
    });
    const onDisk = await lines(path);
    assert.equal(onDisk.length, 2);
    assert.deepEqual(onDisk[1], b);
    const result = await verifyLogFile(path, { pubkeyHex: key.publicKeyHex });
    assert.deepEqual(result, {
      ok: true,
      count: 2,
      head: b.l4,
      chainId: log.chainId,
      pubkeyHex: key.publicKeyHex,
    });
    await log.close();
    await assert.rejects(command(log, "ls"), AuditUnavailableError);
  });
});

Deno.test("log: hashes only by default; plaintext only when asked", async () => {
  await withLog(async ({ dir, path, key }) => {
    const secretCommand = "cat /etc/hostname # canary-4f1d";
    const log = await openAuditLog(path, key);
    const rec = await command(log, secretCommand);
    assert.equal(rec.token.erin, sha(secretCommand));
    assert.ok(!(await Deno.readTextFile(path)).includes("canary-4f1d"));
    const plainPath = `${dir}/plain.jsonl`;
    const plain = await openAuditLog(plainPath, key, { plaintext: true });
    assert.equal((await command(plain, secretCommand)).token.erin, secretCommand);
    assert.ok((await Deno.readTextFile(plainPath)).includes("canary-4f1d"));
  });
});

Deno.test("log: a result is a child token of its command, even when records interleave", async () => {
  await withLog(async ({ path, key }) => {
    const log = await openAuditLog(path, key);
    const a = await command(log, "sleep 2");
    const b = await command(log, "uptime", "@alice:example.org");
    const rb = await log.appendResult(b, { exit_code: 0, duration_ms: 7, output: "up 3 days" });
    const ra = await log.appendResult(a, { exit_code: null, duration_ms: 2000 });
    assert.equal(rb.token.parent_id, b.token.id);
    assert.equal(rb.parent_seq, 2);
    assert.equal(rb.token.token_type, "nc.command.result");
    assert.equal(rb.token.actor, "@alice:example.org");
    assert.equal(rb.token.erin, sha("up 3 days"));
    assert.equal(ra.token.parent_id, a.token.id);
    assert.equal(ra.parent_seq, 1);
    const context = JSON.parse(ra.token.eromheen);
    assert.equal(context.exit_code, null);
    assert.equal(context.duration_ms, 2000);
    assert.deepEqual(await verifyLogFile(path).then((r) => r.ok && r.count), 4);
  });
});

Deno.test("log: reopening continues the same chain", async () => {
  await withLog(async ({ path, key }) => {
    const first = await openAuditLog(path, key);
    await command(first, "df -h");
    const last = await command(first, "uptime");
    await first.close();
    const second = await openAuditLog(path, key);
    assert.equal(second.chainId, first.chainId);
    assert.deepEqual(second.head(), first.head());
    const next = await command(second, "free -m");
    assert.equal(next.seq, 3);
    assert.equal(next.l4_prev, last.l4);
    assert.equal(next.token.parent_id, last.token.id);
    assert.equal(next.chain_id, first.chainId);
    const result = await verifyLogFile(path, { pubkeyHex: key.publicKeyHex });
    assert.ok(result.ok && result.count === 3 && result.head === next.l4);
  });
});

Deno.test("log: concurrent appends are serialised in call order", async () => {
  await withLog(async ({ path, key }) => {
    const log = await openAuditLog(path, key);
    const records = await Promise.all(
      Array.from({ length: 40 }, (_, i) => command(log, `echo ${i}`)),
    );
    assert.deepEqual(records.map((r) => r.seq), Array.from({ length: 40 }, (_, i) => i + 1));
    assert.deepEqual(records.map((r) => r.token.erin), records.map((_, i) => sha(`echo ${i}`)));
    assert.deepEqual(await verifyLogFile(path).then((r) => r.ok && r.count), 40);
  });
});

Deno.test("log: each record is written and fsync'd before append returns", async () => {
  await withLog(async ({ path, key }) => {
    const log = await openAuditLog(path, key);
    await command(log, "first");
    const original = Deno.FsFile.prototype.syncSync;
    const sizesAtSync: number[] = [];
    Deno.FsFile.prototype.syncSync = function (this: Deno.FsFile) {
      sizesAtSync.push(this.statSync().size);
      return original.call(this);
    };
    let rec;
    try {
      rec = await command(log, "second");
    } finally {
      Deno.FsFile.prototype.syncSync = original;
    }
    const size = (await Deno.stat(path)).size;
    assert.deepEqual(sizesAtSync, [size], "one fsync, after the whole line was written");
    assert.deepEqual((await lines(path)).at(-1), rec);
  });
});

Deno.test("log: the log file is 0600, and a looser existing log is tightened", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tibet-nc-audit-" });
  try {
    // Key and log are created under umask 0 in a process of their own: the umask
    // is shared by test files running in parallel.
    const lib = (f: string) => JSON.stringify(new URL(`../lib/audit/${f}`, import.meta.url).href);
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `import { openAuditLog } from ${lib("log.ts")};
         import { loadOrCreateSigningKey } from ${lib("signing_key.ts")};
         Deno.umask(0o000);
         const key = await loadOrCreateSigningKey(${JSON.stringify(`${dir}/signing_key.jwk`)});
         const log = await openAuditLog(${JSON.stringify(`${dir}/audit.jsonl`)}, key);
         await log.append({ token_type: "nc.command.execute", actor: "@a:b", erin: "id",
           eraan: ["$e"], eromheen: { hostname: "h" }, erachter: "t" });
         await log.close();`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const path = `${dir}/audit.jsonl`;
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(`${dir}/signing_key.jwk`)).mode! & 0o777, 0o600);
    await Deno.chmod(path, 0o644);
    const key = await loadOrCreateSigningKey(`${dir}/signing_key.jwk`);
    await (await openAuditLog(path, key)).close();
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("log: a torn last line is set aside and the recovery is recorded", async () => {
  await withLog(async ({ path, key }) => {
    const log = await openAuditLog(path, key);
    await command(log, "a");
    await command(log, "b");
    const torn = '{"chain_id":"cut-off-by-a-crash';
    await Deno.writeTextFile(path, torn, { append: true });
    const reopened = await openAuditLog(path, key);
    assert.ok(reopened.recovered);
    assert.equal(reopened.recovered.bytes, torn.length);
    assert.equal(await Deno.readTextFile(reopened.recovered.savedTo), torn);
    const records = await lines(path);
    assert.equal(records.length, 3);
    const token = records[2].token as { token_type: string; eromheen: string };
    assert.equal(token.token_type, "nc.audit.recover");
    assert.equal(JSON.parse(token.eromheen).dropped_bytes, torn.length);
    assert.ok((await verifyLogFile(path)).ok);
  });
});

Deno.test("log: opening refuses a log whose last record fails verification or another key", async () => {
  await withLog(async ({ dir, path, key }) => {
    const log = await openAuditLog(path, key);
    await command(log, "a");
    await command(log, "b");
    const otherKey = await loadOrCreateSigningKey(`${dir}/other.jwk`);
    await assert.rejects(openAuditLog(path, otherKey), (e: Error) => {
      assert.ok(e instanceof AuditUnavailableError);
      assert.match(e.message, /signed by public key .* but the signing key is/);
      return true;
    });
    const text = await Deno.readTextFile(path);
    await Deno.writeTextFile(path, text.replace(/"actor":"@zo/g, '"actor":"@Zo'));
    await assert.rejects(openAuditLog(path, key), (e: Error) => {
      assert.ok(e instanceof AuditUnavailableError);
      assert.ok(e.message.includes("audit verify"), e.message);
      return true;
    });
  });
});

Deno.test({
  name: "log: fail closed on a read-only directory and 0400 log (chmod)" +
    (CHMOD_STOPS_WRITES ? "" : " [ignored: chmod does not stop writes for this user (root)]"),
  ignore: !CHMOD_STOPS_WRITES,
  fn: () =>
    withLog(async ({ dir, path, key }) => {
      const log = await openAuditLog(path, key);
      await command(log, "a");
      await Deno.chmod(path, 0o400);
      await Deno.chmod(dir, 0o500);
      await assert.rejects(command(log, "b"), AuditUnavailableError);
      await assert.rejects(openAuditLog(path, key), (e: Error) => {
        assert.ok(e instanceof AuditUnavailableError);
        assert.ok(e.message.includes(path) && /writable/.test(e.message), e.message);
        return true;
      });
      await Deno.chmod(dir, 0o700);
      assert.equal((await lines(path)).length, 1);
    }),
});

Deno.test({
  name: "log: fail closed on an immutable log file (chattr +i, stops root too)" +
    (CHATTR_WORKS ? "" : " [ignored: chattr +i is not available here]"),
  ignore: !CHATTR_WORKS,
  fn: () =>
    withLog(async ({ path, key }) => {
      const log = await openAuditLog(path, key);
      await command(log, "a");
      const chattr = (flag: string) => new Deno.Command("chattr", { args: [flag, path] }).output();
      assert.ok((await chattr("+i")).success);
      try {
        await assert.rejects(command(log, "b"), (e: Error) => {
          assert.ok(e instanceof AuditUnavailableError);
          assert.ok(e.message.includes(`lsattr ${path}`), e.message);
          assert.match(e.message, /Commands are refused/);
          return true;
        });
        await assert.rejects(openAuditLog(path, key), AuditUnavailableError);
      } finally {
        await chattr("-i");
      }
      assert.equal((await lines(path)).length, 1);
      assert.equal((await command(log, "c")).seq, 2, "appends work again once writable");
    }),
});

Deno.test("log: fail closed on a path no process can create (/sys is read-only)", async () => {
  await withLog(async ({ key }) => {
    const path = "/sys/tibet-nc-audit-test.jsonl";
    const log = await openAuditLog(path, key);
    await assert.rejects(command(log, "a"), (e: Error) => {
      assert.ok(e instanceof AuditUnavailableError);
      assert.ok(e.message.includes(path), e.message);
      return true;
    });
    await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
  });
});

Deno.test("log: fail closed when the log path is a directory, or is swapped after opening", async () => {
  await withLog(async ({ dir, path, key }) => {
    await assert.rejects(openAuditLog(dir, key), (e: Error) => {
      assert.ok(e instanceof AuditUnavailableError);
      assert.match(e.message, /is a directory/);
      return true;
    });
    const log = await openAuditLog(path, key);
    await command(log, "a");
    await Deno.rename(path, `${path}.moved`);
    await Deno.mkdir(path);
    await assert.rejects(command(log, "b"), AuditUnavailableError);
    await Deno.remove(path);
    await Deno.rename(`${path}.moved`, path);
    assert.equal((await command(log, "c")).seq, 2);
    // Another writer (or a restored copy) changes the file: stop, do not fork the chain.
    await Deno.writeTextFile(path, await Deno.readTextFile(path) + "\n", { append: false });
    await assert.rejects(command(log, "d"), /replaced or written by someone else/);
  });
});

Deno.test({
  name: "log: a write that fails half-way (file size limit) leaves no partial record" +
    (PRLIMIT_WORKS ? "" : " [ignored: prlimit (util-linux) is not installed]"),
  ignore: !PRLIMIT_WORKS,
  fn: () =>
    withLog(async ({ dir, path, key }) => {
      const log = await openAuditLog(path, key);
      await command(log, "a");
      await command(log, "b");
      await log.close();
      const sizeBefore = (await Deno.stat(path)).size;
      // The child appends under RLIMIT_FSIZE = size + 200 bytes: the kernel accepts part
      // of the ~1 KiB record, then refuses with EFBIG, as a full disk would. This works
      // for root too. SIGXFSZ is ignored so the write fails instead of killing the child.
      const child = `${dir}/child.ts`;
      await Deno.writeTextFile(
        child,
        `import { openAuditLog } from "${LOG_MODULE}";
       import { loadOrCreateSigningKey } from "${KEY_MODULE}";
       if (Deno.args[0] === "warm") Deno.exit(0);
       const key = await loadOrCreateSigningKey(${JSON.stringify(`${dir}/signing_key.jwk`)});
       const log = await openAuditLog(${JSON.stringify(path)}, key);
       const out = [];
       for (const erin of ["c", "d"]) {
         try {
           await log.append({ token_type: "nc.command.execute", actor: "x", erin, erachter: "y" });
           out.push("appended");
         } catch (e) {
           out.push(e.name + ": " + e.message);
         }
       }
       console.log(JSON.stringify(out));`,
      );
      const deno = new URL("../deno", import.meta.url).pathname;
      const run = (prefix: string[], arg: string) =>
        new Deno.Command("sh", {
          args: ["-c", `trap "" XFSZ; exec "$@"`, "sh", ...prefix, deno, "run", "-A", child, arg],
          stdout: "piped",
          stderr: "piped",
        }).output();
      const warm = await run([], "warm"); // fill Deno's caches before the limit applies
      assert.ok(warm.success, new TextDecoder().decode(warm.stderr));
      const limited = await run(["prlimit", `--fsize=${sizeBefore + 200}`, "--"], "go");
      const stdout = new TextDecoder().decode(limited.stdout);
      assert.ok(limited.success, stdout + new TextDecoder().decode(limited.stderr));
      const outcomes: string[] = JSON.parse(stdout);
      assert.equal(outcomes.length, 2);
      for (const outcome of outcomes) {
        assert.match(outcome, /^AuditUnavailableError: audit log .* cannot be written/);
        assert.match(outcome, /size limit/);
      }
      assert.equal((await Deno.stat(path)).size, sizeBefore, "the partial line was cut off");
      const result = await verifyLogFile(path);
      assert.ok(result.ok && result.count === 2);
    }),
});

Deno.test("log: close waits for appends already queued, and refuses later ones", async () => {
  await withLog(async ({ path, key }) => {
    const log = await openAuditLog(path, key);
    const pending = [command(log, "a"), command(log, "b")];
    await log.close();
    assert.deepEqual((await Promise.all(pending)).map((r) => r.seq), [1, 2]);
    await assert.rejects(command(log, "c"), /is closed/);
    assert.equal((await lines(path)).length, 2);
  });
});
