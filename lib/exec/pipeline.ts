/**
 * Runs a pipeline (`ps aux | grep nginx`) without a shell. Each stage is its own
 * process, started by the monitor as the exec user; the monitor connects them:
 *
 * - every stage but the last runs without a terminal, in a session of its own
 *   (util-linux `setsid`), stdin the previous stage's stdout (the first reads
 *   nothing), stdout a pipe the monitor reads, stderr into the output;
 * - the last stage runs under the PTY like a single command (`run.ts`), reading
 *   a FIFO the monitor writes, so input passes byte for byte and output looks as
 *   on a terminal;
 * - the monitor copies each stage's stdout into the next stage's stdin, with
 *   back-pressure. When a reader goes, the copy stops and closes its source, so
 *   the writer gets SIGPIPE as under a shell.
 *
 * The exit status is the last stage's, as in a shell; each stage's own is in
 * {@linkcode PipelineResult.stageCodes}. A timeout, a cancel or the output
 * limit stops every stage, and whatever a stage left in its session is stopped
 * before `done` settles.
 *
 * The FIFO lives in a fresh directory under /tmp (private to the unit:
 * PrivateTmp=yes) that only its owner can list; its name is 128 random bits,
 * so only the stage told its path can open it.
 * @module
 */

import {
  runCommand,
  type RunHandle,
  type RunRequest,
  type RunResult,
  SETPRIV_PATH,
  setprivArgs,
} from "./run.ts";
import { sendSignal, SIGNAL_NUMBERS, terminateGroup } from "./signals.ts";
import { outputGate } from "./output_gate.ts";

/** util-linux setsid(1): gives each stage but the last a session the runner can stop whole. */
export const SETSID_PATH = "/usr/bin/setsid";
/** coreutils mkfifo(1): Deno has no call that makes a FIFO. */
export const MKFIFO_PATH = "/usr/bin/mkfifo";

/** One stage: its validated argv and resolved program, as for a single command. */
export interface Stage {
  argv: string[];
  path: string;
}

/** What to run: the stages, in order; every other field as for {@linkcode runCommand}. */
export interface PipelineRequest extends Omit<RunRequest, "argv" | "path" | "stdinPath"> {
  stages: Stage[];
  /**
   * Where the FIFO's directory is made; the exec user must be able to reach it.
   * @default "/tmp"
   */
  fifoParent?: string;
}

/** How a pipeline ended: the last stage's status, and every stage's. */
export interface PipelineResult extends RunResult {
  /** Exit status of each stage, in order; 128+N for a stage killed by signal N. */
  stageCodes: (number | null)[];
}

/** A running pipeline. */
export interface PipelineHandle {
  /** Stops every stage (SIGTERM, then SIGKILL after the grace); idempotent. */
  cancel(reason?: string): void;
  /** Settles once every stage and whatever it left in its session are gone. */
  done: Promise<PipelineResult>;
}

/**
 * Starts the stages of `req` connected by pipes and passes the output (the last
 * stage's terminal, every stage's stderr) to `sink` as it arrives. One stage is
 * a plain {@linkcode runCommand}.
 *
 * @throws Error when the request is malformed; a stage that cannot start
 * rejects `done`, after every started stage was stopped.
 */
export function runPipeline(
  req: PipelineRequest,
  sink: (chunk: Uint8Array) => void,
): PipelineHandle {
  if (req.stages.length === 0) throw new Error("a pipeline needs at least one stage");
  if (req.stages.length === 1) {
    const [only] = req.stages;
    const h = runCommand({ ...req, argv: only.argv, path: only.path }, sink);
    return { cancel: h.cancel, done: h.done.then((r) => ({ ...r, stageCodes: [r.code] })) };
  }
  if ((req.uid === undefined) !== (req.gid === undefined)) {
    throw new Error("uid and gid must be given together, or a command keeps the agent's group");
  }
  if (!(req.timeoutMs > 0) || !(req.maxOutputBytes >= 0)) {
    throw new RangeError(
      `timeout (${req.timeoutMs} ms) must be positive, output limit (${req.maxOutputBytes}) >= 0`,
    );
  }
  const started = performance.now();
  const cwd = req.cwd ?? req.env.HOME ?? "/";
  const front: { child: Deno.ChildProcess; exited: boolean }[] = [];
  let last: RunHandle | null = null;
  let stopping = false, timedOut = false, cancelled = false;
  let cancelReason: string | null = null;
  let signalError: Error | null = null;
  const stops: Promise<void>[] = [];

  const signal = (pid: number, sig: Deno.Signal): boolean => {
    const sent = sendSignal(pid, sig);
    if (sent === true || sent === false) return sent;
    signalError ??= new Error(
      `cannot send ${sig} to process group ${-pid} of a pipeline stage: ${sent}` +
        " (the agent needs CAP_KILL to stop commands running as another user)",
    );
    return false;
  };
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    last?.cancel();
    for (const s of front) if (!s.exited) stops.push(terminateGroup(s.child.pid, signal));
  };
  const timer = setTimeout(() => {
    timedOut = true;
    stop();
  }, Math.min(req.timeoutMs, 2 ** 31 - 1));

  // One limit over every stage's output together.
  const gate = outputGate(req.maxOutputBytes, sink, () => stop());
  const forward = gate.forward;

  const done = (async (): Promise<PipelineResult> => {
    const dir = await Deno.makeTempDir({ dir: req.fifoParent ?? "/tmp", prefix: "tibet-nc-pipe-" });
    try {
      await Deno.chmod(dir, 0o711);
      const fifo = `${dir}/${randomName()}`;
      await makeFifo(fifo);
      if (stopping) return notStarted();

      const dropCaps = req.uid !== undefined;
      const stages = req.stages;
      try {
        for (const [i, st] of stages.slice(0, -1).entries()) {
          const child = new Deno.Command(SETPRIV_PATH, {
            args: setprivArgs(dropCaps, [SETSID_PATH, "--", st.path, ...st.argv.slice(1)]),
            env: req.env,
            clearEnv: true,
            cwd,
            uid: req.uid,
            gid: req.gid,
            stdin: i === 0 ? "null" : "piped",
            stdout: "piped",
            stderr: "piped",
          }).spawn();
          front.push({ child, exited: false });
        }
      } catch (e) {
        stop();
        await Promise.all(stops);
        throw new Error(
          `cannot start stage ${front.length + 1} (${stages[front.length].path}) in ${cwd}: ${
            (e as Error).message
          }`,
        );
      }
      const statuses = front.map((s) =>
        s.child.status.then((st) => {
          s.exited = true;
          return st;
        })
      );

      // Opening a FIFO waits for the other end, and the last stage's end is opened
      // inside posix_spawn, which holds this thread: so both ends are held first
      // (read-write never waits), that open then finds a writer, and the monitor's
      // write-only end, opened once the stage holds its read end, replaces them.
      const holder = Deno.openSync(fifo, { read: true, write: true });
      const final = stages[stages.length - 1];
      try {
        last = runCommand({
          argv: final.argv,
          path: final.path,
          env: req.env,
          cwd,
          timeoutMs: req.timeoutMs,
          maxOutputBytes: Number.MAX_SAFE_INTEGER, // counted here, with the stderr of the others
          uid: req.uid,
          gid: req.gid,
          stdinPath: fifo,
          eofAtOnce: req.eofAtOnce,
        }, forward);
      } catch (e) {
        holder.close();
        stop();
        await Promise.all([...statuses, ...stops]);
        throw e;
      }
      const writer = Deno.openSync(fifo, { write: true });
      holder.close();
      if (stopping) last.cancel();
      const lastDone = last.done;

      const copies: Promise<void>[] = [];
      for (let i = 0; i + 1 < front.length; i++) {
        copies.push(front[i].child.stdout.pipeTo(front[i + 1].child.stdin).catch(() => {}));
      }
      copies.push((async () => {
        try {
          await front[front.length - 1].child.stdout.pipeTo(writer.writable);
        } catch { /* the last stage stopped reading: its source is cancelled */ }
        try {
          writer.close();
        } catch { /* closed by the copy */ }
      })());
      const pumps = front.map((s) => pump(s.child.stderr, forward));

      let lastResult: RunResult;
      let frontStatus: Deno.CommandStatus[];
      try {
        [lastResult, frontStatus] = await Promise.all([lastDone, Promise.all(statuses)]);
      } catch (e) {
        stop(); // the last stage's sink or signals failed: stop the others too
        await Promise.all([...statuses, ...stops]);
        throw e;
      }
      clearTimeout(timer);
      // Background children a stage left in its session (they may hold its stderr).
      for (const s of front) await terminateGroup(s.child.pid, signal);
      await Promise.all([...copies, ...pumps, ...stops]);
      if (gate.sinkError !== null) throw gate.sinkError;
      if (signalError !== null) throw signalError;
      return {
        code: lastResult.code,
        timedOut: timedOut || lastResult.timedOut,
        cancelled,
        cancelReason,
        outputLimited: gate.outputLimited,
        durationMs: Math.round(performance.now() - started),
        totalBytes: gate.totalBytes,
        stageCodes: [...frontStatus.map(statusCode), lastResult.code],
      };
    } finally {
      clearTimeout(timer);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  })();

  function notStarted(): PipelineResult {
    clearTimeout(timer);
    return {
      code: null,
      timedOut,
      cancelled,
      cancelReason,
      outputLimited: gate.outputLimited,
      durationMs: Math.round(performance.now() - started),
      totalBytes: 0,
      stageCodes: req.stages.map(() => null),
    };
  }

  return {
    cancel(reason?: string): void {
      if (stopping) return;
      cancelled = true;
      cancelReason = reason ?? null;
      stop();
    },
    done,
  };
}

/** Makes the FIFO `path`, readable by the exec user (who reaches it through a 0711 dir). */
async function makeFifo(path: string): Promise<void> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(SETPRIV_PATH, {
      args: ["--", MKFIFO_PATH, "-m", "0644", "--", path],
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
  } catch (e) {
    throw new Error(`cannot run ${MKFIFO_PATH} for a pipeline: ${(e as Error).message}`);
  }
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim();
    throw new Error(`cannot make the FIFO of a pipeline: ${err || `mkfifo exited ${out.code}`}`);
  }
}

function randomName(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function statusCode(st: Deno.CommandStatus): number | null {
  if (st.signal === null) return st.code;
  const n = SIGNAL_NUMBERS[st.signal];
  return n === undefined ? null : 128 + n;
}

/**
 * Throws, naming the program and its package, when a helper every command needs
 * is missing: better one clear line at start than a failure per command.
 */
export function checkHelpers(
  helpers: string[] = [SETPRIV_PATH, SETSID_PATH, MKFIFO_PATH],
): void {
  for (const path of helpers) {
    let info: Deno.FileInfo | null = null;
    try {
      info = Deno.statSync(path);
    } catch { /* reported below */ }
    if (!info?.isFile || !((info.mode ?? 0) & 0o111)) {
      throw new Error(
        `${path} is missing or not executable: commands run through it (install util-linux and coreutils)`,
      );
    }
  }
}

/**
 * Reads `stream` into one reused buffer (a BYOB reader), so gigabytes of output
 * allocate nothing per chunk: `onChunk` must copy what it keeps.
 */
async function pump(
  stream: ReadableStream<Uint8Array>,
  onChunk: (bytes: Uint8Array) => void,
): Promise<void> {
  const reader = stream.getReader({ mode: "byob" });
  let buf = new Uint8Array(64 * 1024);
  for (;;) {
    const { value, done } = await reader.read(buf);
    if (done || !value) break;
    onChunk(value);
    buf = new Uint8Array(value.buffer); // the read hands the buffer back in `value`
  }
}
