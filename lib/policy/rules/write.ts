/**
 * Writes onto protected paths: for tools whose job is writing (`cp`, `tee`,
 * `sort -o`, `dd of=`, archivers, compressors, `sed -i`, `openssl -out`) the
 * write stays allowed, but never into a system directory, an `.ssh` dir, a
 * device or the agent's state dir (`deny.write.protected`). Which argument is
 * written is read per program; anything it cannot place is judged as a target.
 * @module
 */

import { longOpt, operands, optionValues, protectedPath, shortHas } from "../options.ts";
import { type ArgRule, type Cmd, type Hit, is } from "../rule.ts";

/** The arguments `c`'s program writes to, as far as its options say. */
function targets(c: Cmd): string[] {
  const ops = operands(c.args);
  const a = c.args;
  if (is(c, "tee", "truncate", "fallocate", "shred")) return ops;
  if (is(c, "cp", "mv", "install", "ln", "rsync")) {
    return [...optionValues(a, "t", ["target-directory"]), ...ops.slice(-1)];
  }
  if (is(c, "dd")) return a.filter((x) => /^of=/i.test(x));
  if (is(c, "sort")) return optionValues(a, "o", ["output"]);
  if (is(c, "split")) return ops.slice(1, 2); // split FILE PREFIX
  if (is(c, "csplit")) return optionValues(a, "f", ["prefix"]);
  if (is(c, "openssl")) {
    return a.flatMap((x, i) => /^-(out|keyout|signature)$/.test(x) ? [a[i + 1] ?? ""] : []);
  }
  if (is(c, "unzip")) return a.flatMap((x, i) => x === "-d" ? [a[i + 1] ?? ""] : []);
  if (is(c, "zip")) return ops.slice(0, 1);
  if (is(c, "tar", "gtar", "bsdtar")) return tarTargets(a);
  if (is(c, "sed", "gsed")) {
    return a.some((x) => longOpt(x, "in-place") || /^-[^-]*i/.test(x)) ? ops : [];
  }
  if (is(c, "gzip", "gunzip", "bzip2", "bunzip2", "xz", "unxz", "zstd", "unzstd")) {
    const toStdout = a.some((x) =>
      shortHas(x, "ctl") || ["stdout", "to-stdout", "test", "list"].some((o) => longOpt(x, o))
    );
    return toStdout ? optionValues(a, "o", ["output"]) : ops;
  }
  return [];
}

/** tar writes its `-f` archive when creating, and into `-C` when extracting. */
function tarTargets(a: string[]): string[] {
  const first = a[0] ?? "";
  const oldStyle = /^[A-Za-z]+$/.test(first) ? first : "";
  const mode = (letters: string, long: string[]) =>
    [...letters].some((l) => oldStyle.includes(l) || a.some((x) => shortHas(x, l))) ||
    a.some((x) => long.some((o) => longOpt(x, o)));
  const out: string[] = [];
  if (mode("cruA", ["create", "append", "update", "concatenate"])) {
    out.push(...optionValues(a, "f", ["file"]));
    if (oldStyle.includes("f")) out.push(a[1] ?? ""); // tar cf ARCHIVE …
  }
  if (mode("x", ["extract", "get"])) out.push(...optionValues(a, "C", ["directory"]));
  return out;
}

function writeRule(c: Cmd): Hit {
  const target = targets(c).find((p) => protectedPath(p, c.protect));
  return target === undefined ? null : {
    rule: "deny.write.protected",
    why: `it would write ${target}: a system directory, an .ssh dir, a device or the ` +
      "agent's state dir",
  };
}

/** Writing tools, kept off protected paths. */
export const PROTECTED_WRITE: ArgRule = {
  id: "deny.write.protected",
  programs: [
    ...["tee", "truncate", "fallocate", "shred", "cp", "mv", "install", "ln", "rsync", "dd"],
    ...["sort", "split", "csplit", "openssl", "unzip", "zip", "tar", "gtar", "bsdtar", "sed"],
    ...["gsed", "gzip", "gunzip", "bzip2", "bunzip2", "xz", "unxz", "zstd", "unzstd"],
  ],
  check: writeRule,
};
