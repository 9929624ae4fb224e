/**
 * runPipeline with real programs: the same output as `sh -c` gives for the same
 * pipeline, input passed byte for byte, SIGPIPE as under a shell, and every
 * stage stopped by cancel and timeout (no process, no FIFO left behind).
 */
import assert from "node:assert/strict";
import { type PipelineResult, runPipeline } from "../lib/exec/pipeline.ts";
import { processesWith } from "./support/processes.ts";

const isRoot = Deno.uid() === 0;
/** As the agent runs them: another user when the test may switch (nobody). */
const asUser = isRoot ? { uid: 65534, gid: 65534 } : {};

function which(name: string): string {
  if (name.startsWith("/")) return name;
  for (const dir of ["/usr/bin", "/bin"]) {
    try {
      Deno.statSync(`${dir}/${name}`);
      return `${dir}/${name}`;
    } catch { /* next */ }
  }
  throw new Error(`${name} is not installed`);
}

/** The FIFOs' parent of this file's pipelines, so other files' cannot be mistaken for leftovers. */
const fifoParent = Deno.makeTempDirSync({ prefix: "tibet-nc-pipeline-test-" });
Deno.chmodSync(fifoParent, 0o755);

function start(stages: string[][], timeoutMs = 20_000) {
  const chunks: Uint8Array[] = [];
  const handle = runPipeline({
    fifoParent,
    stages: stages.map((argv) => ({ argv, path: which(argv[0]) })),
    env: { PATH: "/usr/bin:/bin", HOME: "/" },
    cwd: "/",
    timeoutMs,
    maxOutputBytes: 8 << 20,
    ...asUser,
  }, (c) => chunks.push(c.slice()));
  const text = () => new TextDecoder().decode(concat(chunks));
  return { handle, text };
}

async function run(stages: string[][]): Promise<{ result: PipelineResult; text: string }> {
  const { handle, text } = start(stages);
  const result = await handle.done;
  return { result, text: text() };
}

/** What a shell prints for the same pipeline (no PTY, so no \r). */
async function shell(line: string): Promise<string> {
  const out = await new Deno.Command("sh", { args: ["-c", line], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function fifoDirs(): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(fifoParent)) names.push(e.name);
  return names;
}

Deno.test("pipeline: two and three stages print what sh prints", async () => {
  const cases: [string[][], string][] = [
    [[["printf", "b\\na\\nc\\n"], ["sort"]], "printf 'b\\na\\nc\\n' | sort"],
    [[["seq", "1", "2000"], ["grep", "7"], ["tail", "-5"]], "seq 1 2000 | grep 7 | tail -5"],
    [[["seq", "50000"], ["sort", "-r"], ["head", "-3"]], "seq 50000 | sort -r | head -3"],
  ];
  for (const [stages, line] of cases) {
    const { result, text } = await run(stages);
    assert.equal(text.replaceAll("\r\n", "\n"), await shell(line), line);
    assert.equal(result.code, 0, line);
  }
});

Deno.test("pipeline: input reaches the last stage byte for byte (no terminal in between)", async () => {
  // Control bytes a terminal would take as ^C/^D, and a 488,895-byte line (4 KiB is a tty line).
  const ctl = await run([["printf", "a\\003b\\004c\\025d"], ["od", "-An", "-c"]]);
  assert.equal(
    ctl.text.replaceAll("\r\n", "\n"),
    await shell("printf 'a\\003b\\004c\\025d' | od -An -c"),
  );
  const long = await run([["seq", "100000"], ["tr", "-d", "\\n"], ["wc", "-c"]]);
  assert.equal(long.text.trim(), "488895");
});

Deno.test("pipeline: an early reader's exit stops the writer with SIGPIPE, as in a shell", async () => {
  const { result, text } = await run([["yes"], ["head", "-3"]]);
  assert.equal(text, "y\r\ny\r\ny\r\n");
  assert.deepEqual(result.stageCodes, [141, 0]);
  assert.equal(result.code, 0);
});

Deno.test("pipeline: the status is the last stage's; each stage's is kept", async () => {
  const { result } = await run([["false"], ["true"]]);
  assert.deepEqual([result.code, result.stageCodes], [0, [1, 0]]);
  const missing = await run([["seq", "3"], ["grep", "nothing-matches"]]);
  assert.deepEqual([missing.result.code, missing.result.stageCodes], [1, [0, 1]]);
});

Deno.test("pipeline: stderr of every stage is shown", async () => {
  const { text } = await run([["ls", "/no-such-dir-a"], ["ls", "/no-such-dir-b"]]);
  assert.match(text, /no-such-dir-a/);
  assert.match(text, /no-such-dir-b/);
});

Deno.test("pipeline: cancel and timeout stop every stage and leave nothing behind", async () => {
  const mark = `${Math.floor(Math.random() * 1e6)}`;
  const stages = [["sleep", `100.${mark}`], ["sleep", `101.${mark}`], ["sleep", `102.${mark}`]];
  const { handle } = start(stages);
  const running = async () => {
    const all = await Promise.all([100, 101, 102].map((n) => processesWith(`${n}.${mark}`)));
    return all.every((pids) => pids.length > 0);
  };
  for (let i = 0; i < 100 && !(await running()); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(await running(), "every stage is running");
  handle.cancel("cancelled by the test");
  const cancelled = await handle.done;
  assert.equal(cancelled.cancelled, true);
  assert.deepEqual(await processesWith(`.${mark}`), []);

  const timed = await start([["sleep", `103.${mark}`], ["sleep", `104.${mark}`]], 1000).handle
    .done;
  assert.equal(timed.timedOut, true);
  assert.deepEqual(await processesWith(`.${mark}`), []);
});

Deno.test("pipeline: a stage that cannot be found fails the line with its message", async () => {
  const { result, text } = await run(
    [["seq", "3"], ["true"]].map((a, i) => i === 1 ? ["/usr/bin/no-such-program"] : a),
  );
  assert.equal(result.code, 127);
  assert.match(text, /no-such-program/);
});

Deno.test("pipeline: no FIFO directory is left after any of the runs above", async () => {
  assert.deepEqual(await fifoDirs(), []);
  await Deno.remove(fifoParent);
});
