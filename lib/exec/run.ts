/**
 * Runs one validated argv under a real pseudo-terminal (util-linux `script`, see
 * `pty_helper.ts`), streams its output to a sink, and stops it, with everything it
 * started, on timeout, cancel or output overflow.
 *
 * Stopping: `script` puts the command in a new session on the PTY, and the
 * command's first output line tells its session id, which is also its process
 * group. Stop sends SIGTERM to that group, then SIGKILL after
 * {@linkcode KILL_GRACE_MS}. When `script` has exited, whatever is left in the
 * group (a background child ignoring the PTY's hangup) is stopped the same way
 * before `done` settles, so a command leaves no process behind unless it moved to
 * a group or session of its own (a daemon); only a cgroup would catch those.
 * `script` stays in the agent's process group, so a Ctrl-C or a stop of the agent
 * reaches it too, and it passes SIGTERM on to the command.
 * @module
 */

import { ptyInvocation, splitSessionMarker } from "./pty_helper.ts";
import { delay, KILL_GRACE_MS, POLL_MS, sendSignal, terminateGroup } from "./signals.ts";
import { outputGate } from "./output_gate.ts";

export { KILL_GRACE_MS } from "./signals.ts";

/**
 * util-linux setpriv(1), which starts every process of a command without
 * inheritable capabilities and with a parent-death signal.
 */
export const SETPRIV_PATH = "/usr/bin/setpriv";

/** Arguments of {@linkcode SETPRIV_PATH} that start `command` (its path and arguments). */
export function setprivArgs(dropCaps: boolean, command: string[]): string[] {
  // Ambient capabilities (CAP_SETUID/SETGID/KILL, granted by the unit so the agent
  // can switch users) survive setuid() between non-root users and execve(): a
  // command could become root again. setpriv drops them; it needs no privilege.
  // --pdeathsig: if the agent dies (SIGKILL, OOM) the process dies with it; under
  // the unit systemd would kill it anyway, but not under `deno task start`.
  return [
    ...(dropCaps ? ["--inh-caps=-all", "--ambient-caps=-all"] : []),
    "--pdeathsig=KILL",
    "--",
    ...command,
  ];
}

/** What to run; the argv has passed the parser, the policy and resolution. */
export interface RunRequest {
  /** Validated argv; argv[0] is replaced by `path`. */
  argv: string[];
  /** Resolved absolute path of the program. */
  path: string;
  /** The program's complete environment (see `childEnv`). */
  env: Record<string, string>;
  /** Working directory; defaults to `env.HOME`, else `/`, never the agent's own. */
  cwd?: string;
  /** Wall-clock limit; the command is stopped when it is reached. */
  timeoutMs: number;
  /** Bytes passed to the sink at most; more output stops the command. */
  maxOutputBytes: number;
  /** User to run as; requires `gid`. */
  uid?: number;
  /** Group to run as; supplementary groups are dropped when switching from root. */
  gid?: number;
  /**
   * A FIFO the command reads as its stdin instead of the terminal (the last
   * stage of a pipeline); opened by the command's shell line, as the exec user.
   */
  stdinPath?: string;
  /**
   * Gives the command EOF on its terminal at once. util-linux `script`, on
   * reading the end of its own stdin, waits 10 ms before it passes `^D` on
   * (so a program that sets raw mode first reads it as EOF, not as a byte), and
   * that wait held up every answer. With this, `script`'s stdin stays open and
   * `^D` is written at the start. Not for screen programs, which set raw mode.
   * @default false
   */
  eofAtOnce?: boolean;
}

/** How a command ended. */
export interface RunResult {
  /** Exit status; 128+N when the program died of signal N (`script -e` reports it so). */
  code: number | null;
  /** Set only when `script` itself was killed (the last resort of a stop). */
  signal: string | null;
  /** Stopped because `timeoutMs` passed. */
  timedOut: boolean;
  /** Stopped by {@linkcode RunHandle.cancel}. */
  cancelled: boolean;
  /** The reason given to `cancel`, if any. */
  cancelReason: string | null;
  /** Stopped because the output passed `maxOutputBytes`. */
  outputLimited: boolean;
  /** Wall-clock time from start to the end of cleanup. */
  durationMs: number;
  /** Output bytes produced, including any beyond `maxOutputBytes` that were discarded. */
  totalBytes: number;
}

/** A running command. */
export interface RunHandle {
  /** Pid of the `script` process. */
  pid: number;
  /** Stops the command (SIGTERM, then SIGKILL after the grace); idempotent. */
  cancel(reason?: string): void;
  /**
   * Settles once the command and everything it left in its session are gone;
   * always await it. Rejects if the sink threw (the command is stopped first) or
   * if a process could not be signalled.
   */
  done: Promise<RunResult>;
}

/**
 * Starts `req` under a PTY and passes each output chunk to `sink` as it arrives;
 * the runner keeps no output itself, so the sink decides what to retain. A chunk
 * is valid only during the call (its buffer is reused): copy what you keep.
 *
 * @throws Error when the request is malformed or `script` cannot be started.
 */
export function runCommand(req: RunRequest, sink: (chunk: Uint8Array) => void): RunHandle {
  if ((req.uid === undefined) !== (req.gid === undefined)) {
    throw new Error("uid and gid must be given together, or a command keeps the agent's group");
  }
  if (!(req.timeoutMs > 0) || !(req.maxOutputBytes >= 0)) {
    throw new RangeError(
      `timeout (${req.timeoutMs} ms) must be positive, output limit (${req.maxOutputBytes}) >= 0`,
    );
  }
  const inv = ptyInvocation(req.path, req.argv, req.env, req.stdinPath);
  const cwd = req.cwd ?? req.env.HOME ?? "/";
  const started = performance.now();
  const command = SETPRIV_PATH;
  const args = setprivArgs(req.uid !== undefined, [inv.command, ...inv.args]);
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(command, {
      args,
      env: inv.env,
      clearEnv: true,
      cwd,
      uid: req.uid,
      gid: req.gid,
      // The command sees EOF on its terminal, so nothing waits for input.
      stdin: req.eofAtOnce ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (e) {
    throw new Error(
      `cannot start ${inv.command} in ${cwd}${req.uid === undefined ? "" : ` as uid ${req.uid}`}: ${
        (e as Error).message
      } (is util-linux installed, does the directory exist for that user?)`,
    );
  }

  // ^D at the start of the terminal's line is EOF for a reader; the pipe stays
  // open until the end, so script never sees its own stdin end and never waits.
  const eofWriter = req.eofAtOnce ? child.stdin.getWriter() : null;
  eofWriter?.write(new Uint8Array([0x04])).catch(() => {});

  let sid: number | null = null;
  let exited = false;
  let stopping: Promise<void> | null = null;
  let timedOut = false, cancelled = false;
  let cancelReason: string | null = null;
  let signalError: Error | null = null;

  const signal = (pid: number, sig: Deno.Signal): boolean => {
    const sent = sendSignal(pid, sig);
    if (sent === true || sent === false) return sent;
    signalError ??= new Error(
      `cannot send ${sig} to ${
        pid < 0 ? `process group ${-pid}` : `pid ${pid}`
      } of the command: ${sent}` +
        " (the agent needs CAP_KILL to stop commands running as another user)",
    );
    return false;
  };
  const stop = (): void => {
    stopping ??= (async () => {
      if (sid !== null) await terminateGroup(sid, signal);
      else signal(child.pid, "SIGTERM"); // not started yet: script passes it on
      // With its child gone, script drains the PTY and exits; give it the grace.
      const deadline = performance.now() + KILL_GRACE_MS;
      while (!exited && performance.now() < deadline) await delay(POLL_MS);
      if (!exited) signal(child.pid, "SIGKILL");
    })();
  };
  const timer = setTimeout(() => {
    timedOut = true;
    stop();
  }, Math.min(req.timeoutMs, 2 ** 31 - 1));

  const gate = outputGate(req.maxOutputBytes, sink, () => stop());
  const forward = gate.forward;
  let pending: Uint8Array | null = new Uint8Array(0);
  const onStdout = (bytes: Uint8Array): void => {
    if (pending === null) return forward(bytes);
    const head = concat(pending, bytes);
    const split = splitSessionMarker(head);
    if (split === null) {
      pending = head;
      return;
    }
    pending = null;
    if (split.sid !== null && split.sid !== Deno.pid && split.sid > 1) sid = split.sid;
    forward(split.rest);
  };

  const done = (async (): Promise<RunResult> => {
    // stderr carries only script's own complaints (the program writes to the PTY).
    const pumps = Promise.all([pump(child.stdout, onStdout), pump(child.stderr, forward)]);
    const status = await child.status;
    exited = true;
    eofWriter?.close().catch(() => {});
    clearTimeout(timer);
    await pumps;
    if (pending !== null && pending.length > 0) forward(pending);
    await stopping;
    // Background children left in the command's group once it exited.
    if (sid !== null) await terminateGroup(sid, signal);
    if (gate.sinkError !== null) throw gate.sinkError;
    if (signalError !== null) throw signalError;
    return {
      code: status.signal === null ? status.code : null,
      signal: status.signal,
      timedOut,
      cancelled,
      cancelReason,
      outputLimited: gate.outputLimited,
      durationMs: Math.round(performance.now() - started),
      totalBytes: gate.totalBytes,
    };
  })();

  return {
    pid: child.pid,
    cancel(reason?: string): void {
      if (exited || stopping !== null) return;
      cancelled = true;
      cancelReason = reason ?? null;
      stop();
    },
    done,
  };
}

/**
 * Reads `stream` into one reused buffer (a BYOB reader), so gigabytes of output
 * allocate nothing per chunk: `onChunk` must copy what it keeps.
 */
export async function pump(
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

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
