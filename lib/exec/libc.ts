/**
 * The few libc calls the monitor makes itself, through Deno's FFI: a
 * pseudo-terminal pair, `posix_spawn` onto it, reading its master side, waiting
 * for the child and signalling it. They replace util-linux `script(1)` as the
 * PTY helper, whose fixed 10 ms waits held up every answer (see `pty.ts`).
 *
 * Only the monitor opens this library (`--allow-ffi`); the Matrix worker's
 * permissions have `ffi: false`. The constants are Linux's, the same on x86_64
 * and aarch64; the struct sizes are glibc's, with room to spare.
 * @module
 */

/** Where glibc's shared object lives on the systems the binary is built for. */
export const LIBC_PATHS = [
  "/lib/x86_64-linux-gnu/libc.so.6",
  "/lib/aarch64-linux-gnu/libc.so.6",
  "/lib64/libc.so.6",
  "/usr/lib64/libc.so.6",
  "/usr/lib/libc.so.6",
  "/lib/libc.so.6",
];

const SYMBOLS = {
  posix_openpt: { parameters: ["i32"], result: "i32" },
  grantpt: { parameters: ["i32"], result: "i32" },
  unlockpt: { parameters: ["i32"], result: "i32" },
  ptsname_r: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  kill: { parameters: ["i32", "i32"], result: "i32" },
  waitpid: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  waitpid_blocking: {
    name: "waitpid",
    parameters: ["i32", "buffer", "i32"],
    result: "i32",
    nonblocking: true,
  },
  __errno_location: { parameters: [], result: "pointer" },
  // memcpy twice over: Deno's pointer helpers (UnsafePointer.of, UnsafePointerView)
  // need FFI permission for every library, and the agent's is scoped to libc.
  addressOf: { name: "memcpy", parameters: ["buffer", "buffer", "usize"], result: "usize" },
  copyFrom: { name: "memcpy", parameters: ["buffer", "pointer", "usize"], result: "pointer" },
  posix_spawn: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  posix_spawn_file_actions_init: { parameters: ["buffer"], result: "i32" },
  posix_spawn_file_actions_destroy: { parameters: ["buffer"], result: "i32" },
  posix_spawn_file_actions_addopen: {
    parameters: ["buffer", "i32", "buffer", "i32", "u32"],
    result: "i32",
  },
  posix_spawn_file_actions_adddup2: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  posix_spawn_file_actions_addchdir_np: { parameters: ["buffer", "buffer"], result: "i32" },
  posix_spawnattr_init: { parameters: ["buffer"], result: "i32" },
  posix_spawnattr_destroy: { parameters: ["buffer"], result: "i32" },
  posix_spawnattr_setflags: { parameters: ["buffer", "i16"], result: "i32" },
  posix_spawnattr_setsigmask: { parameters: ["buffer", "buffer"], result: "i32" },
  posix_spawnattr_setsigdefault: { parameters: ["buffer", "buffer"], result: "i32" },
  sigemptyset: { parameters: ["buffer"], result: "i32" },
  sigfillset: { parameters: ["buffer"], result: "i32" },
} as const;

/** The bound symbols. */
export type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

export const O_RDONLY = 0;
export const O_RDWR = 2;
export const O_NOCTTY = 0o400;
export const O_CLOEXEC = 0o2000000;
export const TIOCSWINSZ = 0x5414;
export const TCGETS = 0x5401;
export const ICANON = 0o2;
export const FIONBIO = 0x5421;
export const POSIX_SPAWN_SETSIGDEF = 0x04;
export const POSIX_SPAWN_SETSIGMASK = 0x08;
export const POSIX_SPAWN_SETSID = 0x80;
export const WNOHANG = 1;
export const EINTR = 4;
export const ECHILD = 10;
export const EAGAIN = 11;
export const ESRCH = 3;
export const EPERM = 1;
export const POLLIN = 0x1;
/** Bytes for a posix_spawn_file_actions_t (80 in glibc) or posix_spawnattr_t (336). */
export const SPAWN_STRUCT_BYTES = 512;
/** Bytes of a sigset_t (128 in glibc). */
export const SIGSET_BYTES = 128;

let lib: Libc | null = null;

/** The first of {@linkcode LIBC_PATHS} that exists here. */
export function libcPath(): string | undefined {
  return LIBC_PATHS.find((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  });
}

/**
 * The libc bindings, opened on first use. Throws a message naming the fix when
 * FFI is not permitted or no libc is found.
 */
export function libc(): Libc {
  if (lib !== null) return lib;
  const path = libcPath();
  if (path === undefined) {
    throw new Error(
      `no glibc found at ${LIBC_PATHS.join(", ")}: commands need it for their terminal`,
    );
  }
  try {
    lib = Deno.dlopen(path, SYMBOLS).symbols;
  } catch (e) {
    throw new Error(
      `cannot load ${path} for commands' terminals: ${(e as Error).message}` +
        " (the agent runs with --allow-ffi; the compiled binary has it)",
    );
  }
  return lib;
}

// Read on every wait for terminal output: one buffer, not one per call.
const errnoValue = new Int32Array(new ArrayBuffer(4));
const errnoBytes = new Uint8Array(errnoValue.buffer);

/** errno of the last failed call on this thread; read right after the call. */
export function errno(): number {
  const c = libc();
  c.copyFrom(errnoBytes, c.__errno_location(), 4n);
  return errnoValue[0];
}

/** A NUL-terminated copy of `s` for a `char *` parameter. */
export function cString(s: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(s);
  if (bytes.includes(0)) throw new Error("an argument contains a NUL byte");
  // Its own ArrayBuffer: memory V8 never moves, so its address stays valid.
  const out = new Uint8Array(new ArrayBuffer(bytes.length + 1));
  out.set(bytes);
  return out;
}

/**
 * A NULL-terminated `char *[]` of `strings`. The returned `keep` holds the
 * strings' buffers: keep it alive as long as the array is used.
 */
export function cStringArray(
  strings: readonly string[],
): { array: BigUint64Array<ArrayBuffer>; keep: Uint8Array[] } {
  const c = libc();
  const keep = strings.map(cString);
  const array = new BigUint64Array(new ArrayBuffer(8 * (keep.length + 1)));
  keep.forEach((b, i) => {
    array[i] = BigInt(c.addressOf(b, b, 0n));
  });
  return { array, keep };
}
