/**
 * Runs one validated argv under a real pseudo-terminal of its own (`pty.ts`),
 * streams its output to a sink, and stops it, with everything it started, on
 * timeout, cancel or output overflow.
 *
 * Stopping: the command is the leader of a new session on the terminal, so its
 * pid is the session id and process group of everything it starts. Stop sends
 * SIGTERM to that group, then SIGKILL after {@linkcode KILL_GRACE_MS}. When the
 * command has exited, whatever is left in the group (a background child ignoring
 * the terminal's hangup) is stopped the same way before `done` settles, so a
 * command leaves no process behind unless it moved to a group or session of its
 * own (a daemon); only a cgroup would catch those. `--pdeathsig` ends it should
 * the agent die.
 * @module
 */

import { closeMaster, isCanonical, readMaster, spawnOnPty, waitExit, writeMaster } from "./pty.ts";
import { sendSignal, terminateGroup } from "./signals.ts";
import { outputGate } from "./output_gate.ts";
import { CHILD_COLUMNS, CHILD_LINES } from "./child_env.ts";

export { KILL_GRACE_MS } from "./signals.ts";

/**
 * util-linux setpriv(1), which starts every process of a command without
 * inheritable capabilities and with a parent-death signal.
 */
export const SETPRIV_PATH = "/usr/bin/setpriv";

/**
 * Arguments of {@linkcode SETPRIV_PATH} that start `command` (its path and
 * arguments), as `user` when given (supplementary groups cleared, as a switch
 * from root should).
 */
export function setprivArgs(
  dropCaps: boolean,
  command: string[],
  user?: { uid: number; gid: number },
): string[] {
  // Ambient capabilities (CAP_SETUID/SETGID/KILL, granted by the unit so the agent
  // can switch users) survive setuid() between non-root users and execve(): a
  // command could become root again. setpriv drops them; it needs no privilege.
  // --pdeathsig: if the agent dies (SIGKILL, OOM) the process dies with it; under
  // the unit systemd would kill it anyway, but not under `deno task start`.
  return [
    ...(user ? [`--reuid=${user.uid}`, `--regid=${user.gid}`, "--clear-groups"] : []),
    ...(dropCaps ? ["--inh-caps=-all", "--ambient-caps=-all"] : []),
    "--pdeathsig=KILL",
    "--",
    ...command,
  ];
}

/** How long a command may take to set raw mode before it is given EOF (as `script` waits). */
export const EOF_DELAY_MS = 10;

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
   * stage of a pipeline). It is opened inside posix_spawn, which holds the
   * calling thread until then: its write end must be open already (the spawn
   * would wait for a writer forever).
   */
  stdinPath?: string;
  /**
   * Types `^D` on the command's terminal at the start: a reader of the terminal
   * gets EOF instead of waiting for input. Not for screen programs, which set
   * raw mode and would read it as a key. Without it, `^D` is typed after
   * {@linkcode EOF_DELAY_MS} if the terminal is still in line mode by then.
   * @default false
   */
  eofAtOnce?: boolean;
}

/** How a command ended. */
export interface RunResult {
  /**
   * Exit status; 128+N when the program died of signal N, as a shell reports it.
   * Null only for a pipeline stopped before it started.
   */
  code: number | null;
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
  /** Pid of the command: its session and process group id too. */
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
 * @throws Error when the request is malformed or the command cannot be started.
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
  if (!req.path.startsWith("/")) {
    throw new Error(`program path "${req.path}" is not absolute; resolve it in the bin dir first`);
  }
  const cwd = req.cwd ?? req.env.HOME ?? "/";
  const started = performance.now();
  const user = req.uid === undefined ? undefined : { uid: req.uid, gid: req.gid! };
  const child = spawnOnPty({
    path: SETPRIV_PATH,
    argv: [
      SETPRIV_PATH,
      ...setprivArgs(user !== undefined, [req.path, ...req.argv.slice(1)], user),
    ],
    env: req.env,
    cwd,
    stdinPath: req.stdinPath,
    rows: CHILD_LINES,
    cols: CHILD_COLUMNS,
  });
  const sid = child.pid;
  // ^D at the start of the terminal's line is EOF for a reader of the terminal.
  const typeEof = (): void => writeMaster(child.master, new Uint8Array([0x04]));
  if (req.eofAtOnce) typeEof();
  const eofTimer = req.eofAtOnce ? undefined : setTimeout(() => {
    if (!exited && isCanonical(child.master)) typeEof();
  }, EOF_DELAY_MS);

  let exited = false;
  let swept = false;
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
    stopping ??= terminateGroup(sid, signal);
  };
  const timer = setTimeout(() => {
    timedOut = true;
    stop();
  }, Math.min(req.timeoutMs, 2 ** 31 - 1));

  const gate = outputGate(req.maxOutputBytes, sink, () => stop());
  const done = (async (): Promise<RunResult> => {
    const reading = readMaster(child.master, gate.forward, () => swept);
    try {
      const status = await waitExit(sid);
      exited = true;
      clearTimeout(timer);
      clearTimeout(eofTimer);
      await stopping;
      // Background children left in the command's group once it exited.
      await terminateGroup(sid, signal);
      swept = true;
      await reading;
      if (gate.sinkError !== null) throw gate.sinkError;
      if (signalError !== null) throw signalError;
      return {
        code: status.code ?? 128 + status.signal!,
        timedOut,
        cancelled,
        cancelReason,
        outputLimited: gate.outputLimited,
        durationMs: Math.round(performance.now() - started),
        totalBytes: gate.totalBytes,
      };
    } finally {
      clearTimeout(timer);
      clearTimeout(eofTimer);
      swept = true;
      await reading.catch(() => {});
      closeMaster(child.master);
    }
  })();

  return {
    pid: sid,
    cancel(reason?: string): void {
      if (exited || stopping !== null) return;
      cancelled = true;
      cancelReason = reason ?? null;
      stop();
    },
    done,
  };
}
