/**
 * Reading and writing a transferred file as the exec user, so its file
 * permissions hold as they do for commands. The monitor cannot open files as
 * another user and Deno has no O_NOFOLLOW or openat, so each step is a short,
 * fixed `/bin/sh` script (the operator's words arrive only as its positional
 * arguments, never in its text), started through setpriv like every command:
 *
 * - read: open the path, then report what the kernel opened (the
 *   `/proc/$$/fd/3` link, every symlink resolved, and its type and size) before
 *   one byte is read, so a symlink swapped in after any check is still caught:
 *   the monitor judges the opened file, not the name;
 * - write: `cd -P` into the directory and report where that is; write a
 *   temporary file only once the monitor said go, fsync it; then link it under
 *   its name (never replacing, unless --replace renames over) and fsync the
 *   directory, or remove it.
 * @module
 */

import { SETPRIV_PATH, setprivArgs } from "../exec/run.ts";
import { FileError } from "./request.ts";

export { FileError } from "./request.ts";

/** The shell of the helper scripts: only ever given the fixed texts below. */
const SH = "/bin/sh";

/** Who the helpers run as. */
export interface FileUser {
  uid?: number;
  gid?: number;
}

const READ_SCRIPT = `
[ -e "$1" ] || [ -L "$1" ] || { echo "no such file: $1" >&2; exit 3; }
[ -f "$1" ] || { echo "not a regular file (a directory, device, FIFO or socket): $1" >&2; exit 4; }
exec 3< "$1" || exit 5
p=$(readlink /proc/$$/fd/3) || exit 6
t=$(stat -L -c %F:%s /proc/$$/fd/3) || exit 6
printf '%s\\0%s\\0' "$p" "$t"
case $t in "regular file:"*|"regular empty file:"*) ;; *) exit 4 ;; esac
s=\${t##*:}
[ "$s" -le "$2" ] || exit 7
exec head -c "$s" <&3
`;

const PREPARE_SCRIPT = `
if [ -d "$1" ]; then cd -P -- "$1" || exit 3; n=$2
else cd -P -- "$(dirname -- "$1")" || exit 3; n=$(basename -- "$1"); fi
e=new; if [ -e "$n" ] || [ -L "$n" ]; then e=exists; fi
printf '%s\\0%s\\0%s\\0' "$(pwd -P)" "$n" "$e"
IFS= read -r go; [ "$go" = go ] || exit 9
set -C
cat > "$3" || { rm -f -- "$3"; exit 5; }
sync -- "$3" || { rm -f -- "$3"; exit 6; }
`;

const COMMIT_SCRIPT = `
cd -P -- "$1" && [ "$(pwd -P)" = "$1" ] || exit 3
if [ "$4" = replace ]; then mv -f -T -- "$2" "$3" || { rm -f -- "$2"; exit 5; }
else ln -T -- "$2" "$3" || { rm -f -- "$2"; exit 5; }; rm -f -- "$2"; fi
sync -- .
`;

const ABORT_SCRIPT = `cd -P -- "$1" && [ "$(pwd -P)" = "$1" ] && rm -f -- "$2"`;

function helper(user: FileUser, script: string, args: string[], stdin: "piped" | "null") {
  return new Deno.Command(SETPRIV_PATH, {
    args: setprivArgs(user.uid !== undefined, [SH, "-c", script, "sh", ...args]),
    env: { PATH: "/usr/bin:/bin", LC_ALL: "C" },
    clearEnv: true,
    cwd: "/",
    uid: user.uid,
    gid: user.gid,
    stdin,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Reads NUL-terminated fields off the front of `stream`; the rest is data. */
async function readHeader(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  fields: number,
): Promise<{ values: string[]; rest: Uint8Array } | null> {
  let buf = new Uint8Array(0);
  for (;;) {
    const values: string[] = [];
    let at = 0;
    while (values.length < fields) {
      const nul = buf.indexOf(0, at);
      if (nul < 0) break;
      values.push(new TextDecoder().decode(buf.subarray(at, nul)));
      at = nul + 1;
    }
    if (values.length === fields) return { values, rest: buf.subarray(at) };
    if (buf.length > 16_384) return null;
    const { value, done } = await reader.read();
    if (done) return null;
    const next = new Uint8Array(buf.length + value.length);
    next.set(buf);
    next.set(value, buf.length);
    buf = next;
  }
}

async function errorText(child: Deno.ChildProcess): Promise<string> {
  const text = await new Response(child.stderr).text().catch(() => "");
  return text.trim().split("\n").at(-1)?.replace(/^sh: \d+: /, "") ?? "";
}

/** A file opened for `get`. */
export interface OpenedFile {
  /** The path the kernel opened, every symlink resolved. */
  realPath: string;
  size: number;
  /** The file's bytes, exactly `size` of them (an error if it shrank meanwhile). */
  body: ReadableStream<Uint8Array>;
  /** Stops the reader. */
  close(): void;
}

/**
 * Opens `path` as the exec user. `judge` sees the opened file's real path
 * before any byte is read, and may refuse it.
 */
export async function openForGet(
  user: FileUser,
  path: string,
  maxBytes: number,
  judge: (realPath: string) => FileError | null,
): Promise<OpenedFile> {
  const child = helper(user, READ_SCRIPT, [path, String(maxBytes)], "null");
  const reader = child.stdout.getReader();
  const kill = () => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  };
  const header = await readHeader(reader, 2);
  if (header === null) {
    reader.releaseLock();
    const status = await child.status;
    const why = await errorText(child);
    const rule = status.code === 3 || status.code === 5
      ? "deny.file.read"
      : status.code === 4
      ? "deny.file.type"
      : "deny.file.read";
    throw new FileError(rule, why || `cannot read ${path} (helper exit ${status.code})`);
  }
  const [realPath, typeSize] = header.values;
  const size = Number(typeSize.slice(typeSize.lastIndexOf(":") + 1));
  const refusal = judge(realPath) ??
    (!/^regular (empty )?file:\d+$/.test(typeSize)
      ? new FileError("deny.file.type", `${realPath} is not a regular file (${typeSize})`)
      : size > maxBytes
      ? new FileError(
        "deny.file.size",
        `${realPath} is ${size} bytes; the limit is ${maxBytes} (TIBET_NC_MAX_FILE_BYTES)`,
      )
      : null);
  if (refusal) {
    kill();
    await child.status;
    throw refusal;
  }
  let seen = header.rest.length;
  const first = header.rest;
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      if (first.length > 0) c.enqueue(first.slice());
    },
    async pull(c) {
      const { value, done } = await reader.read();
      if (!done) {
        seen += value.length;
        c.enqueue(value);
        return;
      }
      const status = await child.status;
      if (seen !== size || !status.success) {
        c.error(
          new FileError(
            "deny.file.read",
            `${realPath} changed while it was read (${seen} of ${size} bytes)${
              status.success ? "" : `: ${await errorText(child)}`
            }`,
          ),
        );
      } else c.close();
    },
    cancel() {
      kill();
    },
  }, { highWaterMark: 0 });
  return { realPath, size, body, close: kill };
}

/** A `put` target, resolved as the exec user, waiting for its bytes. */
export interface PreparedWrite {
  /** The directory, every symlink resolved. */
  realDir: string;
  name: string;
  /** True when a file (or anything) of that name is there already. */
  exists: boolean;
  /** Writes `body` to the temporary file and fsyncs it; resolves to the bytes written. */
  write(body: ReadableStream<Uint8Array>): Promise<number>;
  /** Links the temporary file under its name (renames over it with `replace`). */
  commit(replace: boolean): Promise<void>;
  /** Removes the temporary file; nothing is left. */
  abort(): Promise<void>;
}

/** Resolves `target` (a dir, or dir/name) as the exec user, for a file called `fileName`. */
export async function prepareForPut(
  user: FileUser,
  target: string,
  fileName: string,
): Promise<PreparedWrite> {
  const tmp = `.tibet-nc-put-${crypto.randomUUID()}.tmp`;
  const child = helper(user, PREPARE_SCRIPT, [target, fileName, tmp], "piped");
  const header = await readHeader(child.stdout.getReader(), 3);
  if (header === null) {
    await child.stdin.close().catch(() => {});
    await child.status;
    throw new FileError(
      "deny.file.path",
      (await errorText(child)) || `cannot reach the directory of ${target}`,
    );
  }
  const [realDir, name, exists] = header.values;
  let started = false;
  const run = async (script: string, args: string[]) => {
    const c = helper(user, script, args, "null");
    const status = await c.status;
    const why = await errorText(c);
    await c.stdout.cancel().catch(() => {});
    return { ok: status.success, why };
  };
  return {
    realDir,
    name,
    exists: exists === "exists",
    async write(body) {
      started = true;
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode("go\n"));
      writer.releaseLock();
      let bytes = 0;
      const counted = body.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, c) {
            bytes += chunk.length;
            c.enqueue(chunk);
          },
        }),
      );
      let copyError: unknown = null;
      await counted.pipeTo(child.stdin).catch((e) => copyError = e);
      if (copyError !== null) {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
        await child.status;
        await run(ABORT_SCRIPT, [realDir, tmp]);
        throw copyError;
      }
      const status = await child.status;
      if (!status.success) {
        const why = await errorText(child);
        await run(ABORT_SCRIPT, [realDir, tmp]);
        throw new FileError("deny.file.write", why || `cannot write in ${realDir}`);
      }
      return bytes;
    },
    async commit(replace) {
      const r = await run(COMMIT_SCRIPT, [realDir, tmp, name, replace ? "replace" : "new"]);
      if (!r.ok) {
        throw new FileError(
          replace ? "deny.file.write" : "deny.file.exists",
          r.why || `cannot create ${realDir}/${name}`,
        );
      }
    },
    async abort() {
      if (!started) {
        await child.stdin.close().catch(() => {});
        await child.status;
        return;
      }
      await run(ABORT_SCRIPT, [realDir, tmp]);
    },
  };
}
