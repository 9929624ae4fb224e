/**
 * install.sh, run for real into scratch directories: DESTDIR staging (packagers),
 * --root system images (users created with `useradd --root`, root only), dry
 * runs, idempotence, uninstall and purge. Nothing is installed on this host and
 * no user is created in its /etc/passwd: every test checks that too.
 */

import assert from "node:assert/strict";
import { othersCanReach } from "./support/staging.ts";
import { parse as parseEnv } from "dotenv";
import { ConfigError, loadConfig } from "../lib/config/config.ts";
import { checkCommand } from "../lib/policy/check.ts";
import { DEFAULT_POLICY } from "../lib/policy/policy_file.ts";

const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const INSTALL_SH = `${REPO}/install.sh`;
const ENV_EXAMPLE = Deno.readTextFileSync(`${REPO}/tibet-nc.env.example`);
const UNIT = Deno.readTextFileSync(`${REPO}/tibet-nc.service`);
/** The default safe set, as install.sh --help documents it. */
const SAFE_SET = [
  "uptime",
  "df",
  "free",
  "date",
  "whoami",
  "hostname",
  "uname",
  "echo",
  "ls",
  "cat",
  "ps",
  "id",
  "tty",
  "journalctl",
  "systemctl",
  "ip",
  "ss",
  "du",
  "lsblk",
  "w",
  "who",
  "last",
];
const SEARCH_DIRS = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"];
/** Commands that change the host; install.sh must not run them in DESTDIR mode. */
const SHIMMED = ["useradd", "groupadd", "userdel", "groupdel", "adduser", "systemctl", "chown"];

const IS_ROOT = Deno.uid() === 0;
const HAS_USERADD = ["/usr/sbin/useradd", "/sbin/useradd"].some(isFile);
const HAS_SETPRIV = isFile("/usr/bin/setpriv");
const HAS_SHELLCHECK = which("shellcheck") !== null;

function isFile(p: string): boolean {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
}

function which(name: string): string | null {
  for (const d of (Deno.env.get("PATH") ?? "").split(":")) {
    if (d && isFile(`${d}/${name}`)) return `${d}/${name}`;
  }
  return null;
}

/** Where install.sh should find `name` on this host (its search order), or null. */
function hostProgram(name: string): string | null {
  for (const d of SEARCH_DIRS) {
    try {
      const st = Deno.statSync(`${d}/${name}`);
      if (st.isFile && (st.mode! & 0o111) !== 0) return `${d}/${name}`;
    } catch { /* not there */ }
  }
  return null;
}

interface Result {
  code: number;
  out: string;
  err: string;
}

/** Runs install.sh with /bin/sh (dash on Debian: a strict POSIX shell). */
async function install(
  args: string[],
  env: Record<string, string> = {},
  opts: { script?: string; asUser?: number } = {},
): Promise<Result> {
  let script = opts.script ?? INSTALL_SH;
  let staged: string | undefined;
  if (opts.asUser !== undefined && !othersCanReach(script)) {
    // That user cannot enter this checkout (under /root): a readable copy.
    staged = await Deno.makeTempDir({ prefix: "tibet-nc-install-" });
    Deno.chmodSync(staged, 0o755);
    Deno.copyFileSync(script, `${staged}/install.sh`);
    Deno.chmodSync(`${staged}/install.sh`, 0o644);
    script = `${staged}/install.sh`;
  }
  let cmd = "/bin/sh";
  let argv = [script, ...args];
  if (opts.asUser !== undefined) {
    cmd = "/usr/bin/setpriv";
    argv = [
      `--reuid=${opts.asUser}`,
      `--regid=${opts.asUser}`,
      "--clear-groups",
      "/bin/sh",
      ...argv,
    ];
  }
  const out = await new Deno.Command(cmd, {
    args: argv,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", TMPDIR: "/tmp", ...env },
    clearEnv: true,
    cwd: "/",
    stdin: "null",
  }).output().finally(() => staged && Deno.removeSync(staged, { recursive: true }));
  const dec = new TextDecoder();
  return { code: out.code, out: dec.decode(out.stdout), err: dec.decode(out.stderr) };
}

function ok(r: Result): Result {
  assert.equal(r.code, 0, `install.sh failed (${r.code}):\n${r.out}\n${r.err}`);
  return r;
}

/** Every entry under `dir` with its type, mode, owner, link target or content. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  async function walk(rel: string) {
    const abs = rel ? `${dir}/${rel}` : dir;
    const st = await Deno.lstat(abs);
    const mode = (st.mode! & 0o7777).toString(8);
    const owner = `${st.uid}:${st.gid}`;
    if (st.isSymlink) m.set(rel, `link -> ${await Deno.readLink(abs)} ${owner}`);
    else if (st.isFile) m.set(rel, `file ${mode} ${owner} ${await Deno.readTextFile(abs)}`);
    else if (st.isDirectory) {
      m.set(rel, `dir ${mode} ${owner}`);
      for await (const e of Deno.readDir(abs)) await walk(rel ? `${rel}/${e.name}` : e.name);
    }
  }
  try {
    await walk("");
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return m;
}

/** Paths added, removed or changed between two snapshots. */
function diff(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of b) if (a.get(k) !== v) out.push(a.has(k) ? `changed ${k}` : `added ${k}`);
  for (const k of a.keys()) if (!b.has(k)) out.push(`removed ${k}`);
  return out.sort();
}

function mode(path: string): number {
  return Deno.lstatSync(path).mode! & 0o7777;
}

/** A scratch dir, a fake binary and a PATH of shims that log forbidden commands. */
async function scratch(): Promise<{
  dir: string;
  bin: string;
  shimLog: string;
  shimPath: string;
  cleanup: () => Promise<void>;
}> {
  const dir = await Deno.makeTempDir({ prefix: "tibet-nc-install-test-" });
  const bin = `${dir}/fake-tibet-nc`;
  await Deno.writeTextFile(bin, `#!/bin/sh\necho fake tibet-nc ${crypto.randomUUID()}\n`);
  const shims = `${dir}/shims`;
  await Deno.mkdir(shims);
  const shimLog = `${dir}/shim.log`;
  for (const name of SHIMMED) {
    await Deno.writeTextFile(
      `${shims}/${name}`,
      `#!/bin/sh\necho "${name} $*" >> '${shimLog}'\nexit 0\n`,
      { mode: 0o755 },
    );
  }
  return {
    dir,
    bin,
    shimLog,
    shimPath: `${shims}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
    cleanup: () => Deno.remove(dir, { recursive: true }),
  };
}

function shimCalls(log: string): string {
  try {
    return Deno.readTextFileSync(log);
  } catch {
    return "";
  }
}

/** A host file that must not change (users must never be created on this host). */
const HOST_PASSWD = () => Deno.readTextFileSync("/etc/passwd");
const HOST_GROUP = () => Deno.readTextFileSync("/etc/group");

Deno.test("DESTDIR: stages binary, env file 0600, state dir 0700, bin dir links and unit; no users, no systemctl", async () => {
  const s = await scratch();
  const passwd = HOST_PASSWD();
  try {
    const D = `${s.dir}/stage`;
    const r = ok(await install(["--binary", s.bin], { DESTDIR: D, PATH: s.shimPath }));

    // Binary.
    const binPath = `${D}/usr/local/bin/tibet-nc`;
    assert.equal(Deno.readTextFileSync(binPath), Deno.readTextFileSync(s.bin));
    assert.equal(mode(binPath), 0o755);
    assert.ok(!isFile(`${binPath}.new`), "no temporary file is left");

    // Env file: the example, 0600.
    const envPath = `${D}/etc/tibet-nc.env`;
    assert.equal(Deno.readTextFileSync(envPath), ENV_EXAMPLE);
    assert.equal(mode(envPath), 0o600);

    // State dir 0700, bin dir 0755.
    assert.ok(Deno.statSync(`${D}/var/lib/tibet-nc`).isDirectory);
    assert.equal(mode(`${D}/var/lib/tibet-nc`), 0o700);
    const binDir = `${D}/usr/local/tibet-nc-bin`;
    assert.equal(mode(binDir), 0o755);

    // Links: exactly the safe-set programs that exist on this host, to their paths.
    const links = new Map<string, string>();
    for (const e of Deno.readDirSync(binDir)) {
      assert.ok(e.isSymlink, `${e.name} is a symlink`);
      links.set(e.name, Deno.readLinkSync(`${binDir}/${e.name}`));
    }
    const expected = new Map<string, string>();
    for (const name of SAFE_SET) {
      const p = hostProgram(name);
      if (p) expected.set(name, p);
    }
    assert.deepEqual(links, expected);
    assert.ok(links.size > 5, `this host has most of the safe set (${[...links.keys()]})`);
    const linkedLine = r.out.split("\n").find((l) => l.startsWith("linked into "));
    assert.ok(linkedLine, r.out);
    assert.deepEqual(linkedLine!.split(":")[1].trim().split(" "), [...expected.keys()]);

    // Unit, in the packagers' unit dir.
    const unitPath = `${D}/usr/lib/systemd/system/tibet-nc.service`;
    assert.equal(Deno.readTextFileSync(unitPath), UNIT);
    assert.equal(mode(unitPath), 0o644);

    // No users, no chown, no systemctl: the postinst commands are printed instead.
    assert.equal(shimCalls(s.shimLog), "");
    assert.equal(HOST_PASSWD(), passwd);
    assert.match(r.out, /postinst/);
    assert.match(
      r.out,
      /^getent passwd tibet-nc >\/dev\/null \|\| useradd --system .*--shell \/usr\/sbin\/nologin .*tibet-nc$/m,
    );
    assert.match(r.out, /useradd --system .*--home-dir \/nonexistent .* tibet-nc-exec$/m);
    assert.match(r.out, /^chown tibet-nc:tibet-nc \/etc\/tibet-nc\.env \/var\/lib\/tibet-nc$/m);
    assert.match(r.out, /^systemctl daemon-reload$/m);
  } finally {
    await s.cleanup();
  }
});

Deno.test("DESTDIR: a second run is idempotent, keeps a modified env file, upgrades the binary", async () => {
  const s = await scratch();
  try {
    const D = `${s.dir}/stage`;
    ok(await install(["--binary", s.bin], { DESTDIR: D }));
    const envPath = `${D}/etc/tibet-nc.env`;
    const edited = ENV_EXAMPLE.replace(
      "TIBET_NC_ACCESS_TOKEN=",
      "TIBET_NC_ACCESS_TOKEN=syt_secret_from_login",
    ) + "TIBET_NC_ROOM=!abc:example.org\n";
    Deno.writeTextFileSync(envPath, edited);
    const before = await snapshot(D);

    const again = ok(await install(["--binary", s.bin], { DESTDIR: D }));
    assert.deepEqual(diff(before, await snapshot(D)), [], "second run changed nothing");
    assert.equal(Deno.readTextFileSync(envPath), edited);
    for (
      const what of [
        `exists: ${D}/usr/local/bin/tibet-nc (identical)`,
        `exists: ${D}/etc/tibet-nc.env (kept as it is`,
        `exists: ${D}/var/lib/tibet-nc (mode 0700)`,
        `exists: ${D}/usr/local/tibet-nc-bin (mode 0755)`,
        `exists: links in ${D}/usr/local/tibet-nc-bin:`,
        `exists: ${D}/usr/lib/systemd/system/tibet-nc.service (identical)`,
      ]
    ) assert.ok(again.out.includes(what), `"${what}" in:\n${again.out}`);
    assert.ok(!/^\+ (ln|cp|mv|mkdir)/m.test(again.out), again.out);

    // An administrator's own link is never replaced.
    Deno.removeSync(`${D}/usr/local/tibet-nc-bin/df`);
    Deno.symlinkSync("/bin/true", `${D}/usr/local/tibet-nc-bin/df`);
    // A new binary is an upgrade: replaced; the env file still kept.
    const newBin = `${s.dir}/fake-v2`;
    Deno.writeTextFileSync(newBin, "#!/bin/sh\necho v2\n");
    const up = ok(await install(["--binary", newBin], { DESTDIR: D }));
    assert.match(up.out, /upgrading: .*\/usr\/local\/bin\/tibet-nc/);
    assert.equal(Deno.readTextFileSync(`${D}/usr/local/bin/tibet-nc`), "#!/bin/sh\necho v2\n");
    assert.equal(Deno.readTextFileSync(envPath), edited);
    assert.equal(mode(envPath), 0o600);
    assert.equal(Deno.readLinkSync(`${D}/usr/local/tibet-nc-bin/df`), "/bin/true");
    assert.match(up.out, /kept: .*tibet-nc-bin\/df -> \/bin\/true/);
  } finally {
    await s.cleanup();
  }
});

Deno.test("--dry-run changes nothing (install, uninstall, purge) and prints the actions", async () => {
  const s = await scratch();
  try {
    const D = `${s.dir}/stage`;
    // On nothing: DESTDIR is not even created.
    const dry = ok(await install(["--dry-run", "--binary", s.bin], { DESTDIR: D }));
    assert.deepEqual(await snapshot(D), new Map());
    assert.match(dry.out, /^would run: cp .*fake-tibet-nc .*\/usr\/local\/bin\/tibet-nc\.new$/m);
    assert.match(dry.out, /^would write: .*\/etc\/tibet-nc\.env \(mode 0600\)/m);
    assert.match(dry.out, /^would run: mkdir -p .*\/var\/lib\/tibet-nc$/m);
    assert.match(dry.out, /^would run: ln -s \/\S+\/ps .*\/usr\/local\/tibet-nc-bin\/ps$/m);
    assert.match(dry.out, /^would write: .*tibet-nc\.service/m);
    assert.match(dry.out, /dry run: nothing was changed/);

    // On an installed tree.
    ok(await install(["--binary", s.bin], { DESTDIR: D }));
    Deno.writeTextFileSync(`${D}/var/lib/tibet-nc/store`, "keys");
    const before = await snapshot(D);
    ok(await install(["--dry-run", "--binary", s.bin], { DESTDIR: D }));
    const un = ok(await install(["--dry-run", "--uninstall", "--purge"], { DESTDIR: D }));
    assert.deepEqual(diff(before, await snapshot(D)), []);
    assert.match(un.out, /^would run: rm -f .*\/usr\/local\/bin\/tibet-nc$/m);
    assert.match(un.out, /^would run: rm -rf .*\/var\/lib\/tibet-nc$/m);
  } finally {
    await s.cleanup();
  }
});

Deno.test("--uninstall keeps only the env file and the state dir; --purge removes them", async () => {
  const s = await scratch();
  try {
    const D = `${s.dir}/stage`;
    // The standard directories a real system has, so only our files are compared.
    for (const d of ["etc", "usr/local/bin", "usr/lib/systemd/system", "var/lib"]) {
      Deno.mkdirSync(`${D}/${d}`, { recursive: true });
    }
    const pristine = await snapshot(D);
    ok(await install(["--binary", s.bin], { DESTDIR: D }));
    Deno.writeTextFileSync(`${D}/var/lib/tibet-nc/crypto-store`, "identity keys");
    // An administrator's own program in the bin dir (not a symlink).
    Deno.writeTextFileSync(`${D}/usr/local/tibet-nc-bin/mytool`, "#!/bin/sh\n", { mode: 0o755 });

    const un = ok(await install(["--uninstall"], { DESTDIR: D, PATH: s.shimPath }));
    assert.deepEqual(diff(pristine, await snapshot(D)), [
      "added etc/tibet-nc.env",
      "added usr/local/tibet-nc-bin",
      "added usr/local/tibet-nc-bin/mytool",
      "added var/lib/tibet-nc",
      "added var/lib/tibet-nc/crypto-store",
    ]);
    assert.match(un.out, /kept: .*\/etc\/tibet-nc\.env \(--purge removes it\)/);
    assert.match(un.out, /kept: .*\/var\/lib\/tibet-nc \(--purge removes it\)/);
    assert.match(un.out, /kept \(not symlinks; --purge removes them\): .*mytool/);
    assert.match(un.out, /postrm/);
    assert.equal(shimCalls(s.shimLog), "", "DESTDIR: no userdel, no systemctl");

    // Uninstalling twice is fine; --purge then leaves the tree as it was.
    ok(await install(["--uninstall"], { DESTDIR: D }));
    ok(await install(["--uninstall", "--purge"], { DESTDIR: D }));
    assert.deepEqual(diff(pristine, await snapshot(D)), []);
  } finally {
    await s.cleanup();
  }
});

Deno.test("install.sh alone uses its embedded copies, which equal the shipped files", async () => {
  const s = await scratch();
  try {
    const text = Deno.readTextFileSync(INSTALL_SH);
    const embedded = (delim: string) => {
      const m = text.match(new RegExp(`<<'${delim}'\\n([\\s\\S]*?)^${delim}$`, "m"));
      assert.ok(m, `heredoc ${delim} in install.sh`);
      return m[1];
    };
    const stale = (file: string, delim: string) =>
      `install.sh's embedded copy of ${file} is stale: replace the lines between ` +
      `<<'${delim}' and ${delim} with the file's content`;
    assert.equal(
      embedded("TIBET_NC_ENV_EXAMPLE_EOF"),
      ENV_EXAMPLE,
      stale("tibet-nc.env.example", "TIBET_NC_ENV_EXAMPLE_EOF"),
    );
    assert.equal(
      embedded("TIBET_NC_SERVICE_EOF"),
      UNIT,
      stale("tibet-nc.service", "TIBET_NC_SERVICE_EOF"),
    );

    const lone = `${s.dir}/lone`;
    Deno.mkdirSync(lone);
    Deno.copyFileSync(INSTALL_SH, `${lone}/install.sh`);
    const D = `${s.dir}/stage`;
    const r = ok(
      await install(["--binary", s.bin], { DESTDIR: D }, { script: `${lone}/install.sh` }),
    );
    assert.match(r.out, /tibet-nc\.env \(mode 0600\) from embedded/);
    assert.equal(Deno.readTextFileSync(`${D}/etc/tibet-nc.env`), ENV_EXAMPLE);
    assert.equal(Deno.readTextFileSync(`${D}/usr/lib/systemd/system/tibet-nc.service`), UNIT);
  } finally {
    await s.cleanup();
  }
});

Deno.test("PREFIX and UNITDIR: the binary moves and the unit's ExecStart follows it", async () => {
  const s = await scratch();
  try {
    const D = `${s.dir}/stage`;
    ok(
      await install(["--binary", s.bin], {
        DESTDIR: D,
        PREFIX: "/usr",
        UNITDIR: "/lib/systemd/system",
      }),
    );
    assert.ok(isFile(`${D}/usr/bin/tibet-nc`));
    assert.ok(!isFile(`${D}/usr/local/bin/tibet-nc`));
    const unit = Deno.readTextFileSync(`${D}/lib/systemd/system/tibet-nc.service`);
    assert.match(unit, /^ExecStart=\/usr\/bin\/tibet-nc run$/m);
    assert.equal(
      unit,
      UNIT.replace("ExecStart=/usr/local/bin/tibet-nc run", "ExecStart=/usr/bin/tibet-nc run"),
    );
    ok(
      await install(["--uninstall", "--purge"], {
        DESTDIR: D,
        PREFIX: "/usr",
        UNITDIR: "/lib/systemd/system",
      }),
    );
    assert.ok(!isFile(`${D}/usr/bin/tibet-nc`));
    assert.ok(!isFile(`${D}/lib/systemd/system/tibet-nc.service`));
  } finally {
    await s.cleanup();
  }
});

const HAS_TLS_TOOLS = which("openssl") !== null && which("curl") !== null;

Deno.test({
  name: "--url downloads over https (curl), checks --sha256, leaves no temporary file" +
    (HAS_TLS_TOOLS ? "" : " [ignored: needs openssl and curl]"),
  ignore: !HAS_TLS_TOOLS,
  fn: async () => {
    const s = await scratch();
    const tmp = `${s.dir}/tmp`;
    Deno.mkdirSync(tmp);
    const gen = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        `${s.dir}/key.pem`,
        "-out",
        `${s.dir}/cert.pem`,
        "-days",
        "1",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.ok(gen.success, new TextDecoder().decode(gen.stderr));
    const body = Deno.readFileSync(s.bin);
    const server = Deno.serve(
      {
        hostname: "127.0.0.1",
        port: 0,
        cert: Deno.readTextFileSync(`${s.dir}/cert.pem`),
        key: Deno.readTextFileSync(`${s.dir}/key.pem`),
        onListen: () => {},
      },
      (req) =>
        new URL(req.url).pathname === "/tibet-nc"
          ? new Response(body)
          : new Response("no", { status: 404 }),
    );
    try {
      const base = `https://127.0.0.1:${server.addr.port}`;
      const env = { DESTDIR: `${s.dir}/stage`, CURL_CA_BUNDLE: `${s.dir}/cert.pem`, TMPDIR: tmp };
      const hex = new TextDecoder().decode(
        (await new Deno.Command("sha256sum", { args: [s.bin] }).output()).stdout,
      ).split(" ")[0];

      const wrong = await install(["--url", `${base}/tibet-nc`, "--sha256", "f".repeat(64)], env);
      assert.equal(wrong.code, 1, wrong.out + wrong.err);
      assert.match(wrong.err, /SHA-256 of .* is [0-9a-f]{64}, expected f{64}: not installed/);
      assert.ok(!isFile(`${s.dir}/stage/usr/local/bin/tibet-nc`));

      const missing = await install(["--url", `${base}/nope`], env);
      assert.equal(missing.code, 1);
      assert.match(missing.err, /download of https:\/\/127\.0\.0\.1:\d+\/nope failed \(curl\)/);

      const r = ok(await install(["--url", `${base}/tibet-nc`, "--sha256", hex], env));
      assert.match(r.out, new RegExp(`verified: SHA-256 ${hex}`));
      assert.deepEqual(Deno.readFileSync(`${s.dir}/stage/usr/local/bin/tibet-nc`), body);
      assert.deepEqual([...Deno.readDirSync(tmp)], [], "downloads are removed");
    } finally {
      await server.shutdown();
      await s.cleanup();
    }
  },
});

Deno.test("clear errors: no binary, http URL, bad checksum, DESTDIR with --root, unknown option", async () => {
  const s = await scratch();
  try {
    const D = `${s.dir}/stage`;
    const cases: [string[], Record<string, string>, RegExp][] = [
      [[], { DESTDIR: D }, /no binary given: use --binary PATH .* or --url https:/],
      [["--url", "http://example.org/tibet-nc"], { DESTDIR: D }, /--url must be an https:\/\/ URL/],
      [["--binary", `${s.dir}/nope`], { DESTDIR: D }, /--binary .*nope: no such file/],
      [["--binary", s.bin, "--root", s.dir], { DESTDIR: D }, /exclude each other/],
      [["--purge"], { DESTDIR: D }, /--purge only goes with --uninstall/],
      [["--frobnicate"], { DESTDIR: D }, /unknown argument "--frobnicate"/],
      [
        ["--binary", s.bin, "--sha256", "0".repeat(64)],
        { DESTDIR: D },
        /SHA-256 of .* is [0-9a-f]{64}, expected 0{64}: not installed/,
      ],
    ];
    for (const [args, env, re] of cases) {
      const r = await install(args, env);
      assert.equal(r.code, 1, `${args.join(" ")}: exit 1\n${r.out}${r.err}`);
      assert.match(r.err, re);
      assert.match(r.err, /^install\.sh: error: /);
      assert.deepEqual(await snapshot(D), new Map(), `${args.join(" ")}: nothing staged`);
    }
    // The right checksum is accepted.
    const sum = await new Deno.Command("sha256sum", { args: [s.bin] }).output();
    const hex = new TextDecoder().decode(sum.stdout).split(" ")[0];
    const r = ok(await install(["--binary", s.bin, "--sha256", hex.toUpperCase()], { DESTDIR: D }));
    assert.match(r.out, new RegExp(`verified: SHA-256 ${hex}`));
    const help = ok(await install(["--help"]));
    for (const name of SAFE_SET) assert.ok(help.out.includes(` ${name}`), `--help lists ${name}`);
  } finally {
    await s.cleanup();
  }
});

Deno.test({
  name: "refuses to run as non-root without DESTDIR or --dry-run" +
    (IS_ROOT && !HAS_SETPRIV ? " [ignored: root without setpriv to drop privileges]" : ""),
  ignore: IS_ROOT && !HAS_SETPRIV,
  fn: async () => {
    const s = await scratch();
    try {
      Deno.chmodSync(s.dir, 0o755);
      Deno.chmodSync(s.bin, 0o644);
      const asUser = IS_ROOT ? 65534 : undefined;
      const hadEnv = isFile("/etc/tibet-nc.env");
      const r = await install(["--binary", s.bin], {}, { asUser });
      assert.equal(r.code, 1);
      assert.match(r.err, /error: run as root .* or use --dry-run .* or DESTDIR=DIR/);
      assert.equal(r.out, "");
      const dry = ok(await install(["--dry-run", "--binary", s.bin], {}, { asUser }));
      assert.match(dry.out, /^(would run: useradd .*|exists: user) tibet-nc$/m);
      assert.match(dry.out, /dry run: nothing was changed/);
      assert.equal(isFile("/etc/tibet-nc.env"), hadEnv);
    } finally {
      await s.cleanup();
    }
  },
});

/** A minimal system image: synthetic account files (no host secrets), nologin, programs. */
function makeImage(root: string) {
  Deno.mkdirSync(`${root}/etc`, { recursive: true });
  Deno.writeTextFileSync(
    `${root}/etc/passwd`,
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
  );
  Deno.writeTextFileSync(`${root}/etc/group`, "root:x:0:\nnogroup:x:65534:\n");
  Deno.writeTextFileSync(
    `${root}/etc/shadow`,
    "root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n",
    { mode: 0o640 },
  );
  Deno.writeTextFileSync(`${root}/etc/gshadow`, "root:*::\nnogroup:*::\n", { mode: 0o640 });
  // shadow-utils backup and lock files exist on a real system.
  for (const f of ["passwd-", "group-", "shadow-", "gshadow-", ".pwd.lock"]) {
    Deno.writeTextFileSync(`${root}/etc/${f}`, "");
  }
  Deno.writeTextFileSync(
    `${root}/etc/login.defs`,
    "SYS_UID_MIN 100\nSYS_UID_MAX 999\nSYS_GID_MIN 100\nSYS_GID_MAX 999\nUSERGROUPS_ENAB yes\n",
  );
  for (const d of ["usr/sbin", "usr/bin", "usr/local/bin", "etc/systemd/system", "var/lib"]) {
    Deno.mkdirSync(`${root}/${d}`, { recursive: true });
  }
  Deno.writeTextFileSync(`${root}/usr/sbin/nologin`, "#!/bin/sh\nexit 1\n", { mode: 0o755 });
  for (const p of ["df", "ps", "systemctl"]) {
    Deno.writeTextFileSync(`${root}/usr/bin/${p}`, "#!/bin/sh\n", { mode: 0o755 });
  }
  // Present but not executable: not linked.
  Deno.writeTextFileSync(`${root}/usr/bin/free`, "", { mode: 0o644 });
}

function passwdEntry(root: string, name: string): string[] | null {
  const line = Deno.readTextFileSync(`${root}/etc/passwd`).split("\n").find((l) =>
    l.startsWith(`${name}:`)
  );
  return line ? line.split(":") : null;
}

Deno.test({
  name:
    "--root: system users with nologin and no home own the env file and state dir; uninstall removes them" +
    (IS_ROOT && HAS_USERADD ? "" : " [ignored: needs root and useradd]"),
  ignore: !(IS_ROOT && HAS_USERADD),
  fn: async () => {
    const s = await scratch();
    const passwd = HOST_PASSWD();
    const group = HOST_GROUP();
    try {
      const R = `${s.dir}/image`;
      makeImage(R);
      const pristine = await snapshot(R);

      const r = ok(await install(["--root", R, "--binary", s.bin]));
      const ids: Record<string, [number, number]> = {};
      for (const name of ["tibet-nc", "tibet-nc-exec"]) {
        const e = passwdEntry(R, name);
        assert.ok(e, `${name} in the image's passwd:\n${r.out}${r.err}`);
        assert.equal(e[5], "/nonexistent", `${name} has no home`);
        assert.equal(e[6], "/usr/sbin/nologin", `${name} has no login shell`);
        const uid = Number(e[2]);
        assert.ok(uid >= 100 && uid <= 999, `${name} is a system user (uid ${uid})`);
        const g = Deno.readTextFileSync(`${R}/etc/group`).split("\n").find((l) =>
          l.startsWith(`${name}:`)
        );
        assert.ok(g, `group ${name}`);
        assert.equal(Number(g.split(":")[2]), Number(e[3]), `${name}'s primary group is its own`);
        ids[name] = [uid, Number(e[3])];
      }
      assert.notEqual(ids["tibet-nc"][0], ids["tibet-nc-exec"][0]);
      assert.notEqual(ids["tibet-nc"][1], ids["tibet-nc-exec"][1], "no shared group");

      const env = Deno.statSync(`${R}/etc/tibet-nc.env`);
      assert.equal(env.mode! & 0o7777, 0o600);
      assert.deepEqual([env.uid, env.gid], ids["tibet-nc"]);
      const state = Deno.statSync(`${R}/var/lib/tibet-nc`);
      assert.equal(state.mode! & 0o7777, 0o700);
      assert.deepEqual([state.uid, state.gid], ids["tibet-nc"]);
      const binDir = Deno.statSync(`${R}/usr/local/tibet-nc-bin`);
      assert.deepEqual([binDir.mode! & 0o7777, binDir.uid, binDir.gid], [0o755, 0, 0]);
      // Only the image's own executables are linked, to their in-image paths.
      const links = [...Deno.readDirSync(`${R}/usr/local/tibet-nc-bin`)].map((e) => e.name).sort();
      assert.deepEqual(links, ["df", "ps", "systemctl"]);
      assert.equal(Deno.readLinkSync(`${R}/usr/local/tibet-nc-bin/ps`), "/usr/bin/ps");
      assert.match(r.out, /not in the image, not linked: uptime free date/);
      assert.ok(isFile(`${R}/etc/systemd/system/tibet-nc.service`));

      // Idempotent.
      const before = await snapshot(R);
      const again = ok(await install(["--root", R, "--binary", s.bin]));
      assert.match(again.out, /^exists: user tibet-nc$/m);
      assert.match(again.out, /^exists: user tibet-nc-exec$/m);
      assert.deepEqual(diff(before, await snapshot(R)), []);

      // Uninstall: users and groups gone, account files as before; env and state kept.
      const un = ok(await install(["--root", R, "--uninstall"]));
      assert.equal(passwdEntry(R, "tibet-nc"), null, un.out);
      assert.equal(passwdEntry(R, "tibet-nc-exec"), null);
      const after = diff(pristine, await snapshot(R)).filter((d) =>
        !/^changed etc\/(\.pwd\.lock|\w+-)$/.test(d)
      );
      assert.deepEqual(after, ["added etc/tibet-nc.env", "added var/lib/tibet-nc"]);
      ok(await install(["--root", R, "--uninstall", "--purge"]));
      assert.deepEqual(
        diff(pristine, await snapshot(R)).filter((d) =>
          !/^changed etc\/(\.pwd\.lock|\w+-)$/.test(d)
        ),
        [],
      );
    } finally {
      await s.cleanup();
      assert.equal(HOST_PASSWD(), passwd, "this host's /etc/passwd is untouched");
      assert.equal(HOST_GROUP(), group, "this host's /etc/group is untouched");
    }
  },
});

Deno.test("the installed bin dir under the agent's policy: systemctl status runs, poweroff is refused", async () => {
  const s = await scratch();
  try {
    const D = `${s.dir}/stage`;
    ok(await install(["--binary", s.bin], { DESTDIR: D }));
    const binDir = `${D}/usr/local/tibet-nc-bin`;
    const linked = new Set([...Deno.readDirSync(binDir)].map((e) => e.name));
    const allowed = [
      "uptime",
      "df -h",
      "free -m",
      "ps aux",
      "journalctl -n 20",
      "systemctl status",
      "ip addr",
      "ss -tln",
      "lsblk",
      "last -n 5",
    ];
    for (const text of allowed) {
      if (!linked.has(text.split(" ")[0])) continue;
      const v = await checkCommand(text, binDir, DEFAULT_POLICY);
      assert.equal(v.verdict, "allow", `${text}: ${v.rule} ${v.reason}`);
    }
    if (linked.has("systemctl")) {
      for (const text of ["systemctl poweroff", "systemctl reboot", "systemctl halt"]) {
        const v = await checkCommand(text, binDir, DEFAULT_POLICY);
        assert.equal(v.verdict, "deny", text);
      }
    }
    // Every linked program resolves (none is a shell in disguise or a broken link).
    for (const name of linked) {
      const v = await checkCommand(
        name === "echo" ? "echo hi" : `${name} --version`,
        binDir,
        DEFAULT_POLICY,
      );
      assert.notEqual(v.rule, "deny.resolve", `${name}: ${v.reason}`);
    }
  } finally {
    await s.cleanup();
  }
});

Deno.test("tibet-nc.env.example documents every variable of config.ts and loads once a token is set", () => {
  const source = ["config.ts", "fleet_config.ts"]
    .map((f) => Deno.readTextFileSync(`${REPO}/lib/config/${f}`)).join("\n");
  const names = new Set(
    [...source.matchAll(/"((?:TIBET_NC|MATRIX|BRAIN)_[A-Z_]+)"/g)].map((m) => m[1]),
  );
  assert.ok(names.size >= 20, `found ${names.size} variables in config.ts`);
  const lines = ENV_EXAMPLE.split("\n");
  for (const name of names) {
    const i = lines.findIndex((l) => new RegExp(`^#?${name}=`).test(l));
    assert.ok(i > 0, `${name} is in tibet-nc.env.example`);
    assert.match(lines[i - 1], /^# \S/, `${name} has a comment line above it`);
  }
  const set = parseEnv(ENV_EXAMPLE);
  assert.deepEqual(Object.keys(set).sort(), [
    "MATRIX_HOMESERVER",
    "TIBET_NC_ACCESS_TOKEN",
    "TIBET_NC_ALLOWED_USERS",
    "TIBET_NC_USER_ID",
  ]);
  assert.match(ENV_EXAMPLE, /tibet-nc login/);
  // As shipped, the agent stops with one line naming the token...
  assert.throws(() => loadConfig(set), (e: Error) => {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.variable, "TIBET_NC_ACCESS_TOKEN");
    return true;
  });
  // ...and once `tibet-nc login` has written it, the placeholders are valid.
  const c = loadConfig({ ...set, TIBET_NC_ACCESS_TOKEN: "syt_abc", TIBET_NC_DEVICE_ID: "ABCDEF" });
  assert.equal(c.homeserver, "https://matrix.example.org");
  assert.equal(c.stateDir, "/var/lib/tibet-nc");
  assert.equal(c.binDir, "/usr/local/tibet-nc-bin");
  assert.equal(c.execUser, "tibet-nc-exec");
  // The commented defaults are the real defaults.
  for (const l of lines) {
    const m = l.match(
      /^#(TIBET_NC_(?:TIMEBOX|COMMAND_TIMEOUT|COMMAND_TIMEOUT_MAX|MAX_OUTPUT_BYTES|MAX_CONCURRENT|RATE_LIMIT|STATE_DIR|BIN_DIR|EXEC_USER))=(.+)$/,
    );
    if (!m) continue;
    const withIt = loadConfig({ ...set, TIBET_NC_ACCESS_TOKEN: "t", [m[1]]: m[2] });
    assert.deepEqual({ ...withIt, hostname: "" }, {
      ...c,
      accessToken: "t",
      deviceId: null,
      hostname: "",
    }, m[1]);
  }
});

Deno.test({
  name: "shellcheck install.sh is clean" +
    (HAS_SHELLCHECK
      ? ""
      : " [ignored: shellcheck is not installed (apt-get install -y shellcheck)]"),
  ignore: !HAS_SHELLCHECK,
  fn: async () => {
    const out = await new Deno.Command("shellcheck", { args: ["--shell=sh", INSTALL_SH] }).output();
    const dec = new TextDecoder();
    assert.equal(out.code, 0, dec.decode(out.stdout) + dec.decode(out.stderr));
    assert.match(Deno.readTextFileSync(INSTALL_SH), /^#!\/bin\/sh\n[\s\S]*^set -eu$/m);
  },
});
