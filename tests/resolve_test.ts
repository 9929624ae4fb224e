import assert from "node:assert/strict";
import { listPrograms, type Resolved, resolveProgram } from "../lib/exec/resolve.ts";

/** First existing regular file among the usual system bin dirs, or null. */
async function systemBinary(name: string): Promise<string | null> {
  for (const dir of ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]) {
    const info = await Deno.stat(`${dir}/${name}`).catch(() => null);
    if (info?.isFile) return `${dir}/${name}`;
  }
  return null;
}

async function stub(path: string): Promise<string> {
  await Deno.writeTextFile(path, "#!/bin/sh\nexit 0\n");
  await Deno.chmod(path, 0o755);
  return path;
}

/**
 * A fresh bin dir: `uptime` linked to the real binary (or a stub when the host
 * has none), `ls` linked to a file named `bash` outside the dir, a plain
 * non-executable file, a broken link, a sub-directory, and a link chain.
 */
async function fixture(): Promise<{ root: string; bin: string; uptime: string }> {
  const root = await Deno.makeTempDir({ prefix: "tibet-nc-resolve-" });
  const bin = `${root}/bin`;
  const elsewhere = `${root}/elsewhere`;
  await Deno.mkdir(bin);
  await Deno.mkdir(elsewhere);
  const uptime = (await systemBinary("uptime")) ?? (await stub(`${elsewhere}/uptime`));
  await Deno.symlink(uptime, `${bin}/uptime`);
  await Deno.symlink(await stub(`${elsewhere}/bash`), `${bin}/ls`);
  await stub(`${bin}/tool`);
  await Deno.writeTextFile(`${bin}/notes.txt`, "not a program\n");
  await Deno.chmod(`${bin}/notes.txt`, 0o644);
  await Deno.symlink(`${elsewhere}/gone`, `${bin}/dangling`);
  await Deno.mkdir(`${bin}/subdir`);
  await stub(`${elsewhere}/final`);
  await Deno.symlink(`${elsewhere}/final`, `${elsewhere}/middle`);
  await Deno.symlink(`${elsewhere}/middle`, `${bin}/chain`);
  return { root, bin, uptime };
}

function ok(r: Resolved): Extract<Resolved, { ok: true }> {
  assert.ok(r.ok, `expected resolution, got: ${r.ok ? "" : r.reason}`);
  return r;
}

function refused(r: Resolved): string {
  assert.ok(!r.ok, `expected a refusal, got ${JSON.stringify(r)}`);
  return r.reason;
}

Deno.test("resolve: a bare name resolves to the bin-dir entry and its real target", async () => {
  const { root, bin, uptime } = await fixture();
  try {
    const r = ok(await resolveProgram(bin, "uptime"));
    assert.equal(r.path, `${bin}/uptime`);
    assert.equal(r.name, "uptime");
    assert.equal(r.realPath, await Deno.realPath(uptime));
    assert.equal(r.realName, r.realPath.slice(r.realPath.lastIndexOf("/") + 1));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("resolve: an absolute path directly in the bin dir is accepted", async () => {
  const { root, bin } = await fixture();
  try {
    assert.equal(ok(await resolveProgram(bin, `${bin}/uptime`)).name, "uptime");
    assert.equal(ok(await resolveProgram(`${bin}/`, "tool")).path, `${bin}/tool`);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("resolve: relative paths, other absolute paths and dot tricks are refused", async () => {
  const { root, bin } = await fixture();
  try {
    for (
      const p of [
        "./uptime",
        "bin/uptime",
        "../bin/uptime",
        "/usr/bin/uptime",
        "/sbin/reboot",
        `${bin}/../bin/uptime`,
        `${bin}/./uptime`,
        `${bin}//uptime`,
        `${bin}/subdir/x`,
        `${bin}/`,
      ]
    ) {
      assert.match(
        refused(await resolveProgram(bin, p)),
        new RegExp(`only programs in ${bin} may run`),
        p,
      );
    }
    assert.match(refused(await resolveProgram(bin, "./uptime")), /e\.g\. "uptime"/);
    assert.match(refused(await resolveProgram(bin, "..")), /not a program/);
    assert.match(refused(await resolveProgram(bin, "")), /empty program name/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("resolve: a symlink is judged by its target's name too (ls -> bash)", async () => {
  const { root, bin } = await fixture();
  try {
    const r = ok(await resolveProgram(bin, "ls"));
    assert.equal(r.name, "ls");
    assert.equal(r.realName, "bash");
    assert.equal(r.path, `${bin}/ls`);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("resolve: a chain of symlinks ends at the final target", async () => {
  const { root, bin } = await fixture();
  try {
    const r = ok(await resolveProgram(bin, "chain"));
    assert.equal(r.name, "chain");
    assert.equal(r.realName, "final");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("resolve: missing, non-executable, broken and directory entries: refused", async () => {
  const { root, bin } = await fixture();
  try {
    assert.match(refused(await resolveProgram(bin, "reboot")), /no program "reboot" in/);
    assert.match(refused(await resolveProgram(bin, "notes.txt")), /not executable.*chmod \+x/);
    assert.match(refused(await resolveProgram(bin, "dangling")), /broken symlink/);
    assert.match(refused(await resolveProgram(bin, "subdir")), /is a directory/);
    assert.match(refused(await resolveProgram(bin, "UPTIME")), /no program "UPTIME"/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("resolve: listPrograms lists only what resolveProgram accepts, sorted", async () => {
  const { root, bin } = await fixture();
  try {
    assert.deepEqual(await listPrograms(bin), ["chain", "ls", "tool", "uptime"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("resolve: listPrograms of a missing bin dir names the dir and the variable", async () => {
  await assert.rejects(
    () => listPrograms("/nonexistent/tibet-nc-bin"),
    /bin dir \/nonexistent\/tibet-nc-bin cannot be listed: does not exist \(check TIBET_NC_BIN_DIR/,
  );
});
