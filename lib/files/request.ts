/**
 * `get PATH` and `put [--replace] TARGET` as the operator types them, read into
 * a request, and the lexical checks made before anything touches the disk: the
 * path is absolute and inside a file dir, a file name is one plain name. The
 * real check follows on the kernel's resolution of every symlink, as the exec
 * user (`exec_file.ts`); these only refuse early what can never pass.
 * @module
 */

import { parseCommand } from "../exec/parse.ts";

/** A file request. */
export type FileRequest =
  | { op: "get"; path: string }
  | { op: "put"; target: string; replace: boolean };

/** A transfer that failed or was refused, with its rule id, for the operator. */
export class FileError extends Error {
  constructor(readonly rule: string, message: string) {
    super(message);
    this.name = "FileError";
  }
}

/**
 * Rules the other side of a transfer may name when its bytes are not whole;
 * any other is reported as `deny.file.transfer`.
 */
export const TRANSFER_RULES = new Set(["deny.file.size", "deny.file.hash", "deny.file.transfer"]);

/** A refusal: rule id and why, for the operator. */
export interface FileRefusal {
  rule: string;
  reason: string;
}

/** The words that start a file request. */
export function isFileCommand(text: string): boolean {
  return /^(get|put)(\s|$)/.test(text.trim());
}

/** How to turn files on, for every refusal that says they are off. */
export const FILES_OFF =
  "file transfer is off: set TIBET_NC_FILE_DIRS to the directories get and put may use " +
  "(colon-separated) and restart the agent";

/** Reads a `get`/`put` command; the text must satisfy {@linkcode isFileCommand}. */
export function parseFileRequest(text: string): FileRequest | FileRefusal {
  const parsed = parseCommand(text);
  if (!parsed.ok) return { rule: "deny.parse", reason: parsed.reason };
  if (parsed.stages.length > 1) {
    return { rule: "deny.parse", reason: "get and put cannot be part of a pipeline" };
  }
  const [op, ...args] = parsed.stages[0];
  if (op === "get") {
    if (args.length !== 1) return usage("get takes one absolute path: get /srv/files/report.txt");
    return { op, path: args[0] };
  }
  const replace = args.includes("--replace");
  const rest = args.filter((a) => a !== "--replace");
  if (rest.length !== 1 || rest[0].startsWith("-")) {
    return usage(
      "put takes a directory or a path, and --replace to overwrite: put /srv/files, put /srv/files/new.txt",
    );
  }
  return { op: "put", target: rest[0], replace };
}

function usage(reason: string): FileRefusal {
  return { rule: "deny.file.usage", reason };
}

/**
 * Why `name` cannot be a file name written by `put`, or null: one plain name, no
 * `/`, no `.` or `..`, no control, invisible or bidi characters, at most 255 bytes.
 */
export function badFileName(name: string): string | null {
  if (name === "" || name === "." || name === "..") return `"${name}" is not a file name`;
  if (name.includes("/")) return `the name "${name}" contains "/"; give a plain name`;
  // C0/C1 controls, DEL, and the invisible and direction-changing format characters.
  if (/[\p{Cc}\p{Cf}\u2028\u2029]/u.test(name)) {
    return "the name contains a control, invisible or text-direction character";
  }
  if (new TextEncoder().encode(name).length > 255) return "the name is longer than 255 bytes";
  return null;
}

/** Lexical form of an absolute path: `.` and empty segments gone, `..` applied. */
export function cleanPath(path: string): string {
  const segs: string[] = [];
  for (const s of path.split("/")) {
    if (s === "" || s === ".") continue;
    if (s === "..") segs.pop();
    else segs.push(s);
  }
  return `/${segs.join("/")}`;
}

/** Kernel views no transfer may touch, even inside a configured dir. */
const VIRTUAL = ["/proc", "/sys", "/dev"];

/** True if `path` (clean, absolute) is `dir` or inside it. */
export function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith("/") ? dir : `${dir}/`);
}

/**
 * Why an absolute path may not be touched, or null: it must lie inside one of
 * `dirs` (a symlinked path is judged again once resolved) and outside /proc,
 * /sys and /dev.
 */
export function pathRefusal(path: string, dirs: readonly string[]): FileRefusal | null {
  if (dirs.length === 0) return { rule: "deny.file.off", reason: FILES_OFF };
  if (!path.startsWith("/")) {
    return { rule: "deny.file.path", reason: `"${path}" is not an absolute path` };
  }
  if (/[\p{Cc}]/u.test(path)) {
    return { rule: "deny.file.path", reason: "the path contains a control character" };
  }
  const clean = cleanPath(path);
  if (VIRTUAL.some((v) => within(clean, v))) {
    return { rule: "deny.file.type", reason: `${clean} is a kernel file, not a file to transfer` };
  }
  if (!dirs.some((d) => within(clean, d))) {
    return {
      rule: "deny.file.path",
      reason: `${clean} is outside the file dirs (${dirs.join(", ")}, TIBET_NC_FILE_DIRS)`,
    };
  }
  return null;
}
