/**
 * Helpers for reading a program's arguments the way getopt does, erring on the
 * side of refusing: abbreviated long options, short-option clusters, option
 * values, operands and paths near `/`.
 * @module
 */

import { w } from "./names.ts";

/**
 * True if `arg` is `--name` or any abbreviation of it (`--rec` for `--recursive`):
 * GNU getopt_long accepts unambiguous prefixes, and an ambiguous one fails
 * anyway, so matching every prefix only ever refuses more.
 */
export function longOpt(arg: string, name: string): boolean {
  const n = arg.split("=")[0];
  return n.length >= 3 && n.startsWith("--") && `--${name}`.startsWith(n);
}

/** True if `arg` is a cluster of short options (`-rf`) containing one of `letters`. */
export function shortHas(arg: string, letters: string): boolean {
  return /^-[^-]/.test(arg) && [...arg.slice(1)].some((c) => letters.includes(c));
}

/** Value of a watched option: attached (`-o/x`, `--output=/x`) or the next argument. */
export function optionValues(args: string[], short: string, long: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") break;
    if (a.startsWith("--")) {
      if (long.some((l) => longOpt(a, l))) {
        out.push(a.includes("=") ? a.slice(a.indexOf("=") + 1) : args[i + 1] ?? "");
      }
    } else if (/^-[^-]/.test(a)) {
      // Over-approximates: every watched letter is taken to start a value.
      for (let j = 1; j < a.length; j++) {
        if (short.includes(a[j])) out.push(a.slice(j + 1) || (args[i + 1] ?? ""));
      }
    }
  }
  return out;
}

/**
 * Depth of an absolute path below `/` after lexical `.`/`..`/`//` clean-up,
 * counting only the words before the first glob (`/usr/*` is 1, `/*` is 0).
 * Relative paths that climb with `..` count as 0: the working directory is not
 * known here, so they may reach `/`. Other relative paths: null (not near `/`).
 */
function rootDepth(path: string): number | null {
  if (!path.startsWith("/")) return path.split("/").includes("..") ? 0 : null;
  return absoluteSegments(path, true).length;
}

/**
 * The words of an absolute path after lexical `.`, `..` and `//` clean-up; with
 * `stopAtGlob`, only those before the first glob.
 */
function absoluteSegments(p: string, stopAtGlob = false): string[] {
  const segs: string[] = [];
  for (const s of p.split("/")) {
    if (s === "" || s === ".") continue;
    if (s === "..") segs.pop();
    else if (stopAtGlob && /[*?[]/.test(s)) break;
    else segs.push(s);
  }
  return segs;
}

export const nearRoot = (p: string): boolean => {
  const d = rootDepth(p);
  return d !== null && d <= 1;
};

/** Non-option arguments (after `--`, everything), for rm/chmod-like programs. */
export function operands(args: string[]): string[] {
  const out: string[] = [];
  let end = false;
  for (const a of args) {
    if (!end && a === "--") end = true;
    else if (end || !a.startsWith("-") || a === "-") out.push(a);
  }
  return out;
}

/** Block and memory devices, bare or as `of=/dev/…`. */
export const BLOCK_DEV = new RegExp(
  "(^|=)/dev/(sd|hd|vd|xvd|nvme|mmcblk|md|dm-|loop|sr\\d|mapper/|disk/|block/|mtdblock|zram|" +
    "nbd|rbd|bcache|fd\\d|ram\\d|mem$|kmem$|port$|root$)",
);
export const WRITERS = [
  "tee",
  "cp",
  "mv",
  "install",
  "truncate",
  "dd",
  "fallocate",
  "shred",
  "rsync",
];

const SYSTEM_TOP = new Set(
  w("bin boot dev etc lib lib32 lib64 libx32 proc root sbin sys usr"),
);

/**
 * True for a path in a system directory (`/etc`, `/usr`, …, `/var/log`, `/var/lib`,
 * `/var/spool`) or an `.ssh` dir: no download or write may land there.
 */
export function systemPath(p: string): boolean {
  if (p.split("/").includes(".ssh")) return true;
  if (!p.startsWith("/")) return false;
  const segs = absoluteSegments(p);
  return SYSTEM_TOP.has(segs[0] ?? "") ||
    (segs[0] === "var" && ["spool", "log", "lib"].includes(segs[1])) || segs.length === 0;
}

/**
 * True if writing `p` would touch a system directory, an `.ssh` dir, a block or
 * memory device, or one of `protect` (the agent's state dir): where no command
 * may write, whatever the exec user's permissions. Relative paths are judged as
 * written (the working directory is the exec user's home); symlinks are left to
 * the file permissions.
 */
export function protectedPath(p: string, protect: readonly string[]): boolean {
  const value = p.replace(/^[a-z]+=/i, ""); // of=/dev/sda
  if (systemPath(value) || BLOCK_DEV.test(value)) return true;
  if (!value.startsWith("/")) return false;
  const segs = absoluteSegments(value);
  return protect.some((dir) => {
    const d = absoluteSegments(dir);
    return d.length > 0 && d.every((s, i) => segs[i] === s);
  });
}
