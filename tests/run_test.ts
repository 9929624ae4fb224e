import assert from "node:assert/strict";
import { childEnv } from "../lib/exec/child_env.ts";
import { createOutputBuffer } from "../lib/exec/output.ts";
import { checkHelpers } from "../lib/exec/pipeline.ts";
import { KILL_GRACE_MS, runCommand, type RunRequest, type RunResult } from "../lib/exec/run.ts";

const ENV = childEnv({ binDir: "/usr/bin", home: "/tmp" });

function request(path: string, args: string[], extra: Partial<RunRequest> = {}): RunRequest {
  return {
    argv: [path.slice(path.lastIndexOf("/") + 1), ...args],
    path,
    env: ENV,
    timeoutMs: 30_000,
    maxOutputBytes: 1 << 20,
    ...extra,
  };
}

/** Runs to completion; output with the PTY's CRLF turned back into LF. */
async function run(req: RunRequest): Promise<{ result: RunResult; out: string }> {
  const chunks: Uint8Array[] = [];
  const result = await runCommand(req, (c) => chunks.push(c.slice())).done;
  const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) bytes.set(c, (off += c.length) - c.length);
  return { result, out: new TextDecoder().decode(bytes).replaceAll("\r\n", "\n") };
}

/** Live (non-zombie) processes whose command line contains `marker`. */
function processesWith(marker: string): number[] {
  const found: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name) || Number(e.name) === Deno.pid) continue;
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${e.name}/cmdline`);
      if (cmdline.includes(marker)) found.push(Number(e.name));
    } catch { /* ended meanwhile */ }
  }
  return found;
}

/** True once `/bin/sleep <marker>` itself runs (not merely a shell naming it). */
function sleeping(marker: string): boolean {
  return processesWith(marker).some((pid) => {
    try {
      return Deno.readTextFileSync(`/proc/${pid}/cmdline`) === `/bin/sleep\0${marker}\0`;
    } catch {
      return false;
    }
  });
}

async function waitFor(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A `sleep` duration that doubles as a unique marker in /proc/<pid>/cmdline. */
const sleepMarker = (): string => `100.${crypto.getRandomValues(new Uint32Array(1))[0]}`;

Deno.test("the command runs on a real pseudo-terminal", async () => {
  const { result, out } = await run(request("/usr/bin/tty", []));
  assert.equal(result.code, 0);
  assert.match(out, /^\/dev\/pts\/\d+\n$/);
});

Deno.test("argv reaches the program literally; no shell interprets anything", async () => {
  const canary = `/tmp/tibet-nc-canary-${crypto.randomUUID()}`;
  const args = [
    "$(id)",
    ";",
    "|",
    "'quoted'",
    "a b",
    '"',
    "\\",
    "*",
    "$HOME",
    "ünï©ødé ✓ 😀",
    "",
    "'\\''",
    `$(touch ${canary})`,
    `;touch ${canary}`,
    `\`touch ${canary}\``,
    `' ; touch ${canary} ; '`,
    `&& touch ${canary}`,
    `> ${canary}`,
  ];
  const { result, out } = await run(request("/usr/bin/printf", ["[%s]\\n", ...args]));
  assert.equal(result.code, 0);
  assert.equal(out, args.map((a) => `[${a}]\n`).join(""));
  assert.equal(processesWith(canary).length, 0);
  await assert.rejects(Deno.stat(canary), Deno.errors.NotFound, "canary file was created");
});

Deno.test("argv[0] is the resolved absolute path", async () => {
  const { out } = await run(request("/bin/sh", ["-c", 'printf "%s\\n" "$0"'], {
    argv: ["sh-from-operator", "-c", 'printf "%s\\n" "$0"'],
  }));
  assert.equal(out, "/bin/sh\n");
});

Deno.test("exit codes are propagated", async () => {
  assert.equal((await run(request("/bin/false", []))).result.code, 1);
  assert.equal((await run(request("/bin/true", []))).result.code, 0);
  assert.equal((await run(request("/bin/sh", ["-c", "exit 42"]))).result.code, 42);
  const missing = await run(request("/nonexistent/prog", []));
  assert.equal(missing.result.code, 127);
  assert.match(missing.out, /\/nonexistent\/prog/);
});

Deno.test("the program gets exactly the environment given", async () => {
  const parse = (out: string): Record<string, string> =>
    Object.fromEntries(
      out.trimEnd().split("\n").map((
        l,
      ) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
  const plain = await run(request("/usr/bin/env", []));
  assert.deepEqual(parse(plain.out), ENV);
  // Names a shell would otherwise set or remove come through as given.
  const env = { ...ENV, SHELL: "/bin/false", PWD: "/given", WEIRD: `a'b "c" $HOME \\` };
  const given = await run(request("/usr/bin/env", [], { env }));
  assert.deepEqual(parse(given.out), env);
});

Deno.test("stdin is at EOF: a program reading it does not hang", async () => {
  const { result, out } = await run(request("/bin/cat", [], { timeoutMs: 10_000 }));
  assert.equal(result.timedOut, false);
  assert.equal(result.code, 0);
  assert.equal(out, "");
});

Deno.test("eofAtOnce: a reader gets EOF at once, and nothing of the ^D shows", async () => {
  const cat = await run(request("/bin/cat", [], { timeoutMs: 10_000, eofAtOnce: true }));
  assert.equal(cat.result.timedOut, false);
  assert.equal(cat.result.code, 0);
  assert.equal(cat.out, "");
  // A program that does not read: its output is unchanged, no stray ^D echoed.
  const echo = await run(request("/bin/echo", ["hi"], { eofAtOnce: true }));
  assert.equal(echo.out, "hi\n");
  // head reads until EOF, then exits; the shell's `read` fails on EOF (exit 1).
  const head = await run(request("/usr/bin/head", ["-c", "5"], { eofAtOnce: true }));
  assert.equal(head.result.code, 0);
  assert.equal(head.out, "");
  const sh = await run(request("/bin/sh", ["-c", "read x; echo read=$?"], { eofAtOnce: true }));
  assert.equal(sh.out, "read=1\n");
});

Deno.test("cwd defaults to HOME and can be set", async () => {
  assert.equal((await run(request("/bin/pwd", []))).out, "/tmp\n");
  assert.equal((await run(request("/bin/pwd", [], { cwd: "/" }))).out, "/\n");
});

Deno.test("a timeout stops the command and leaves no process", async () => {
  const marker = sleepMarker();
  const { result } = await run(request("/bin/sleep", [marker], { timeoutMs: 300 }));
  assert.equal(result.timedOut, true);
  assert.equal(result.cancelled, false);
  assert.ok(result.durationMs < 100_000);
  assert.deepEqual(processesWith(marker), []);
});

Deno.test("output streams while the command runs; cancel stops it", async () => {
  const marker = sleepMarker();
  let seen = "";
  const h = runCommand(request("/bin/sh", ["-c", `echo first; exec /bin/sleep ${marker}`]), (c) => {
    seen += new TextDecoder().decode(c);
  });
  await waitFor(() => seen.includes("first"), "the first line");
  h.cancel("operator said cancel");
  const result = await h.done;
  assert.equal(result.cancelled, true);
  assert.equal(result.cancelReason, "operator said cancel");
  assert.equal(result.code, 128 + 15); // SIGTERM, as script -e reports it
  assert.equal(seen, "first\r\n");
  assert.deepEqual(processesWith(marker), []);
});

Deno.test("a command ignoring SIGTERM is killed after the grace period", async () => {
  const marker = sleepMarker();
  const h = runCommand(
    request("/bin/sh", ["-c", `trap "" TERM; /bin/sleep ${marker}; echo survived`]),
    () => {},
  );
  await waitFor(() => sleeping(marker), "sleep to start");
  const t0 = performance.now();
  h.cancel();
  const result = await h.done;
  assert.ok(performance.now() - t0 >= KILL_GRACE_MS - 100, "killed before the grace period");
  assert.equal(result.cancelled, true);
  assert.equal(result.code, 128 + 9);
  assert.deepEqual(processesWith(marker), []);
});

Deno.test("background grandchildren are stopped on cancel", async () => {
  const [a, b] = [sleepMarker(), sleepMarker()];
  const script = `/bin/sleep ${a} & (trap "" HUP; /bin/sleep ${b}) & wait`;
  const h = runCommand(request("/bin/sh", ["-c", script]), () => {});
  await waitFor(() => sleeping(a) && sleeping(b), "sleeps");
  h.cancel();
  assert.equal((await h.done).cancelled, true);
  assert.deepEqual(processesWith(a), []);
  assert.deepEqual(processesWith(b), []);
});

Deno.test("a background child that ignores hangup is stopped after the command exits", async () => {
  const marker = sleepMarker();
  const script = `trap "" HUP; /bin/sleep ${marker} & echo started`;
  const { result, out } = await run(request("/bin/sh", ["-c", script]));
  assert.equal(result.code, 0);
  assert.equal(out, "started\n");
  assert.deepEqual(processesWith(marker), []);
});

Deno.test("output beyond maxOutputBytes stops the command", async () => {
  const marker = `marker-${crypto.randomUUID()}`;
  let got = 0;
  const h = runCommand(request("/usr/bin/yes", [marker], { maxOutputBytes: 100_000 }), (c) => {
    got += c.length;
  });
  const result = await h.done;
  assert.equal(result.outputLimited, true);
  assert.equal(got, 100_000);
  assert.ok(result.totalBytes >= 100_000);
  assert.deepEqual(processesWith(marker), []);
});

Deno.test("a throwing sink stops the command and rejects done", async () => {
  const marker = `marker-${crypto.randomUUID()}`;
  const h = runCommand(request("/usr/bin/yes", [marker]), () => {
    throw new Error("sink broke");
  });
  await assert.rejects(h.done, /sink broke/);
  assert.deepEqual(processesWith(marker), []);
});

Deno.test("1 GB of output through a bounded buffer keeps memory flat", async () => {
  const go = async (bytes: number) => {
    const buf = createOutputBuffer(65536);
    const req = request("/usr/bin/head", ["-c", String(bytes), "/dev/zero"], {
      timeoutMs: 120_000,
      maxOutputBytes: 2e9,
    });
    const result = await runCommand(req, (c) => buf.push(c)).done;
    assert.equal(result.code, 0);
    assert.equal(buf.totalBytes, bytes);
    return buf;
  };
  await go(20e6); // warm-up: the first spawn and stream grow the heap once
  const before = Deno.memoryUsage().rss;
  const buf = await go(1e9);
  const growth = Deno.memoryUsage().rss - before;
  assert.ok(growth < 50e6, `rss grew by ${(growth / 1e6).toFixed(1)} MB`);
  assert.equal(buf.truncated, true);
  assert.match(buf.render(2000), /output cut: 1\.0 GB total/);
});

Deno.test({
  name: "uid and gid switch the user (needs root; ignored otherwise)",
  ignore: Deno.uid() !== 0,
  fn: async () => {
    const { result, out } = await run(request("/usr/bin/id", [], { uid: 65534, gid: 65534 }));
    assert.equal(result.code, 0);
    assert.match(out, /^uid=65534\(\w+\) gid=65534\(\w+\) groups=65534\(\w+\)\n$/);
    const u = await run(request("/usr/bin/id", ["-u"], { uid: 65534, gid: 65534 }));
    assert.equal(u.out, "65534\n");
    // Stopping works across users too.
    const marker = sleepMarker();
    const h = runCommand(request("/bin/sleep", [marker], { uid: 65534, gid: 65534 }), () => {});
    await waitFor(() => sleeping(marker), "sleep to start");
    h.cancel();
    assert.equal((await h.done).cancelled, true);
    assert.deepEqual(processesWith(marker), []);
    assert.throws(
      () => runCommand(request("/usr/bin/id", [], { uid: 65534 }), () => {}),
      /together/,
    );
  },
});

Deno.test("what cannot be passed to a program is refused before anything starts", () => {
  assert.throws(() => runCommand(request("echo", []), () => {}), /not absolute/);
  assert.throws(() => runCommand(request("/bin/echo", ["a\0b"]), () => {}), /NUL/);
  assert.throws(
    () => runCommand(request("/bin/echo", [], { env: { ...ENV, X: "a\0b" } }), () => {}),
    /NUL/,
  );
  assert.throws(
    () => runCommand(request("/bin/true", [], { cwd: "/nonexistent-dir" }), () => {}),
    /cannot start .* \/nonexistent-dir: no such file or directory/,
  );
});

Deno.test("a command killed by a signal exits 128+N, as a shell reports it", async () => {
  const { result } = await run(request("/bin/sh", ["-c", "kill -TERM $$"]));
  assert.equal(result.code, 143);
  const pipe = await run(request("/bin/sh", ["-c", "kill -PIPE $$"]));
  assert.equal(pipe.result.code, 141, "SIGPIPE is at its default, not ignored as in the agent");
});

Deno.test("the terminal has the size the environment announces", async () => {
  const { out } = await run(request("/bin/stty", ["size"]));
  assert.equal(out, `${ENV.LINES} ${ENV.COLUMNS}\n`);
});

Deno.test("checkHelpers names a missing or non-executable helper and its package", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/plain`, "#!/bin/sh\n", { mode: 0o644 });
  assert.throws(
    () => checkHelpers([`${dir}/absent`]),
    /absent is missing .*install util-linux and coreutils/,
  );
  assert.throws(() => checkHelpers([`${dir}/plain`]), /plain is missing or not executable/);
  checkHelpers(["/bin/sh"]);
});
