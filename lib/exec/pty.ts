/**
 * A program on a pseudo-terminal of its own, started by the monitor through
 * libc (`libc.ts`): no `script(1)`, no shell line, nothing between the runner
 * and the terminal's master side.
 *
 * - `posix_spawn` starts `/usr/bin/setpriv` (which drops capabilities and the
 *   user, then execs the program) as the leader of a new session; opening the
 *   terminal's slave side as fd 0, 1 and 2 makes it that session's controlling
 *   terminal. So the pid is the session id and process group of everything the
 *   command starts. Signal dispositions and mask are reset to the defaults.
 * - The master side is non-blocking and read only on this thread, so errno is
 *   this thread's; waiting for data happens in `poll` on a helper thread.
 * - Once every process holding the terminal has closed it, the master reads
 *   whatever is left and then fails with EIO: the end of output, with nothing
 *   lost and no wait (script waits 10 ms for more output after its child exits).
 *
 * The spawn is synchronous on purpose: `--pdeathsig` ties the command to the
 * thread that started it, and this is the runtime's main thread.
 * @module
 */

import {
  cString,
  cStringArray,
  EAGAIN,
  ECHILD,
  EINTR,
  errno,
  FIONBIO,
  ICANON,
  libc,
  O_CLOEXEC,
  O_NOCTTY,
  O_RDONLY,
  O_RDWR,
  POLLIN,
  POSIX_SPAWN_SETSID,
  POSIX_SPAWN_SETSIGDEF,
  POSIX_SPAWN_SETSIGMASK,
  SIGSET_BYTES,
  SPAWN_STRUCT_BYTES,
  TCGETS,
  TIOCSWINSZ,
  WNOHANG,
} from "./libc.ts";

/** What to start on a new terminal. */
export interface PtySpawn {
  /** Absolute path of the program (`/usr/bin/setpriv` for commands). */
  path: string;
  /** Its argv, argv[0] included. */
  argv: readonly string[];
  /** Its complete environment. */
  env: Readonly<Record<string, string>>;
  /** Working directory, entered before the program starts. */
  cwd: string;
  /** A file (the FIFO of a pipeline) to open as stdin instead of the terminal. */
  stdinPath?: string;
  /** Terminal size. */
  rows: number;
  cols: number;
}

/** A started program: its pid (also its session and group id) and the master fd. */
export interface PtyChild {
  pid: number;
  master: number;
}

/** How a program ended: exactly one of the two is a number. */
export interface PtyExit {
  code: number | null;
  signal: number | null;
}

/**
 * Opens a terminal pair and starts `s` on it. Throws with the reason when the
 * terminal cannot be made or the program cannot be started (nothing is left
 * open then).
 */
export function spawnOnPty(s: PtySpawn): PtyChild {
  if (!s.path.startsWith("/")) throw new Error(`program path "${s.path}" is not absolute`);
  const c = libc();
  const master = c.posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) throw new Error(`cannot open a pseudo-terminal: errno ${errno()}`);
  try {
    const name = new Uint8Array(128);
    if (c.grantpt(master) !== 0 || c.unlockpt(master) !== 0) {
      throw new Error(`cannot unlock the pseudo-terminal: errno ${errno()}`);
    }
    const rc = c.ptsname_r(master, name, BigInt(name.length));
    if (rc !== 0) throw new Error(`cannot name the pseudo-terminal: errno ${rc}`);
    const slave = new TextDecoder().decode(name.subarray(0, name.indexOf(0)));
    const size = new Uint16Array([s.rows, s.cols, 0, 0]);
    c.ioctl(master, BigInt(TIOCSWINSZ), new Uint8Array(size.buffer));
    c.ioctl(master, BigInt(FIONBIO), new Uint8Array(new Int32Array([1]).buffer));
    return { pid: spawn(s, slave), master };
  } catch (e) {
    c.close(master);
    throw e;
  }
}

function spawn(s: PtySpawn, slave: string): number {
  const c = libc();
  const actions = new Uint8Array(SPAWN_STRUCT_BYTES);
  const attr = new Uint8Array(SPAWN_STRUCT_BYTES);
  const mask = new Uint8Array(SIGSET_BYTES);
  const defaults = new Uint8Array(SIGSET_BYTES);
  const slavePath = cString(slave);
  const cwd = cString(s.cwd);
  const stdin = s.stdinPath === undefined ? null : cString(s.stdinPath);
  const path = cString(s.path);
  const argv = cStringArray(s.argv);
  const envp = cStringArray(Object.entries(s.env).map(([k, v]) => `${k}=${v}`));
  c.posix_spawn_file_actions_init(actions);
  c.posix_spawnattr_init(attr);
  try {
    const steps = [
      c.posix_spawn_file_actions_addchdir_np(actions, cwd),
      // After setsid, opening a terminal without O_NOCTTY makes it the controlling one.
      c.posix_spawn_file_actions_addopen(actions, 0, slavePath, O_RDWR, 0),
      c.posix_spawn_file_actions_adddup2(actions, 0, 1),
      c.posix_spawn_file_actions_adddup2(actions, 0, 2),
      ...(stdin === null
        ? []
        : [c.posix_spawn_file_actions_addopen(actions, 0, stdin, O_RDONLY, 0)]),
      c.sigemptyset(mask),
      c.sigfillset(defaults),
      c.posix_spawnattr_setsigmask(attr, mask),
      c.posix_spawnattr_setsigdefault(attr, defaults),
      c.posix_spawnattr_setflags(
        attr,
        POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF,
      ),
    ];
    if (steps.some((rc) => rc !== 0)) throw new Error("cannot prepare posix_spawn");
    const pid = new Int32Array(1);
    const rc = c.posix_spawn(
      new Uint8Array(pid.buffer),
      path,
      actions,
      attr,
      new Uint8Array(argv.array.buffer),
      new Uint8Array(envp.array.buffer),
    );
    if (rc !== 0) {
      throw new Error(
        `cannot start ${s.path} in ${s.cwd}: ${errnoName(rc)} (does the directory exist${
          stdin === null ? "" : ", and the input FIFO"
        }?)`,
      );
    }
    // Keep the strings reachable until the call above has copied them.
    void [argv.keep, envp.keep];
    return pid[0];
  } finally {
    c.posix_spawn_file_actions_destroy(actions);
    c.posix_spawnattr_destroy(attr);
  }
}

/** Writes `bytes` to the master side (input to the program, like typing it). */
export function writeMaster(master: number, bytes: Uint8Array<ArrayBuffer>): void {
  libc().write(master, bytes, BigInt(bytes.length));
}

/**
 * True while the terminal is in canonical (line) mode, where `^D` is end of
 * file rather than a key: what a program that set raw mode would read as input.
 */
export function isCanonical(master: number): boolean {
  const termios = new Uint8Array(64); // struct termios: c_lflag is the 4th u32
  if (libc().ioctl(master, BigInt(TCGETS), termios) !== 0) return false;
  return (new DataView(termios.buffer).getUint32(12, true) & ICANON) !== 0;
}

/** Closes the master side; the program's terminal is hung up if it still has it. */
export function closeMaster(master: number): void {
  libc().close(master);
}

/**
 * Passes everything the program writes to its terminal to `onChunk` (a view of
 * one reused buffer, valid during the call) until every holder has closed the
 * terminal, or until `stopWhenIdle()` is true while no data is waiting (the
 * command is over but something outside its group keeps the terminal open).
 */
export async function readMaster(
  master: number,
  onChunk: (bytes: Uint8Array) => void,
  stopWhenIdle: () => boolean,
  pollMs = 100,
): Promise<void> {
  const c = libc();
  const buf = new Uint8Array(64 * 1024);
  // struct pollfd { int fd; short events, revents; }. Its own ArrayBuffer: V8 never
  // moves that memory, and poll uses it on another thread.
  const pfd = new Uint8Array(new ArrayBuffer(8));
  const view = new DataView(pfd.buffer);
  view.setInt32(0, master, true);
  view.setInt16(4, POLLIN, true);
  // A read gives at most the terminal's 4 KiB line buffer: reads are gathered
  // while data keeps coming, so a flood reaches the sink in pieces of up to 64 KiB.
  let filled = 0;
  const flush = () => {
    if (filled > 0) onChunk(buf.subarray(0, filled));
    filled = 0;
  };
  for (;;) {
    const n = Number(c.read(master, buf.subarray(filled), BigInt(buf.length - filled)));
    if (n > 0) {
      filled += n;
      if (buf.length - filled < 4096) flush();
      continue;
    }
    flush();
    if (n === 0) return;
    const e = errno();
    if (e === EINTR) continue;
    if (e !== EAGAIN) return; // EIO: all holders closed it, and all was read
    if (stopWhenIdle()) return;
    await c.poll(pfd, 1n, pollMs);
  }
}

/** Waits for `pid` to end (the wait blocks a helper thread, not this one). */
export async function waitExit(pid: number): Promise<PtyExit> {
  const c = libc();
  const status = new Int32Array(new ArrayBuffer(4)); // written on another thread, as pfd above
  const statusBytes = new Uint8Array(status.buffer);
  for (;;) {
    if (await c.waitpid_blocking(pid, statusBytes, 0) === pid) return decodeStatus(status[0]);
    // Interrupted on that thread (its errno is out of reach): ask again from here.
    const r = c.waitpid(pid, statusBytes, WNOHANG);
    if (r === pid) return decodeStatus(status[0]);
    if (r < 0 && errno() === ECHILD) {
      throw new Error(`process ${pid} is not a child of the agent any more`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function decodeStatus(st: number): PtyExit {
  const sig = st & 0x7f;
  return sig === 0 ? { code: (st >> 8) & 0xff, signal: null } : { code: null, signal: sig };
}

const ERRNO_NAMES: Record<number, string> = {
  1: "operation not permitted",
  2: "no such file or directory",
  13: "permission denied",
  20: "not a directory",
  8: "not an executable",
};

function errnoName(rc: number): string {
  return ERRNO_NAMES[rc] ?? `errno ${rc}`;
}
