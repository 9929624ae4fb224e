/**
 * Stages that read a pipe: what arrives on stdin is data, never commands to
 * run nor names of files to write. Alone, these programs read the empty
 * terminal and do nothing; after a `|` an earlier stage (`base64 -d`, `printf`,
 * `cat`) would hand them what no rule saw:
 *
 * - `deny.pipe.commands`: `openssl` without a subcommand reads openssl commands
 *   (`s_client`, `engine`) from stdin.
 * - `deny.pipe.write`: extractors that write the files the data names: `tar -x`
 *   / `bsdtar -x` / `pax -r` reading the archive from stdin, `cpio -i|-p`,
 *   `patch` without `-i`, `git apply|am` without a file, `uudecode` without `-o`.
 *
 * Programs that run stdin (shells, interpreters, `xargs`, `crontab`) and script
 * files (`awk -f -`, `sed -f -`) are refused wherever they stand.
 * @module
 */

import { longOpt, optionValues, shortHas } from "../options.ts";
import { type ArgRule, type Cmd, type Hit, is } from "../rule.ts";

/** Paths that name a stage's own stdin. */
const STDIN_PATH = /^(-|\/dev\/stdin|\/dev\/fd\/0|\/proc\/self\/fd\/0)$/;

const GIT_VALUED = new Set(["-C", "-c", "--git-dir", "--work-tree", "--namespace"]);

/** The first word that is not an option (a subcommand), or "". */
function firstWord(args: string[]): string {
  return args.find((a) => !a.startsWith("-")) ?? "";
}

/** tar, bsdtar: extracting (`-x`, `--extract`, `--get`, old-style `xvf`) an archive from stdin. */
function tarFromPipe(c: Cmd): boolean {
  const first = c.args[0] ?? "";
  const oldStyle = /^[A-Za-z]+$/.test(first);
  const extract =
    c.args.some((a) => shortHas(a, "x") || longOpt(a, "extract") || longOpt(a, "get")) ||
    (oldStyle && first.includes("x"));
  if (!extract) return false;
  const archives = optionValues(c.args, "f", ["file"]);
  if (oldStyle && first.includes("f")) archives.push(c.args[1] ?? "");
  return archives.length === 0 || archives.some((f) => STDIN_PATH.test(f));
}

function pipeInputRule(c: Cmd): Hit {
  if (!c.piped) return null;
  const write = (why: string): Hit => ({
    rule: "deny.pipe.write",
    why: `${why}: the files it writes would be named by the data in the pipe, not by you`,
  });
  if (is(c, "openssl") && firstWord(c.args) === "") {
    return {
      rule: "deny.pipe.commands",
      why: "openssl without a subcommand reads openssl commands from the pipe; name the subcommand",
    };
  }
  if (is(c, "tar", "gtar", "bsdtar") && tarFromPipe(c)) return write("tar extracts from the pipe");
  if (
    is(c, "pax") && c.args.some((a) => shortHas(a, "r")) && !c.args.some((a) => shortHas(a, "f"))
  ) {
    return write("pax -r extracts from the pipe");
  }
  if (
    is(c, "cpio") &&
    c.args.some((a) => shortHas(a, "ip") || longOpt(a, "extract") || longOpt(a, "pass-through"))
  ) {
    return write("cpio -i/-p takes its files from the pipe");
  }
  if (is(c, "patch")) {
    const input = optionValues(c.args, "i", ["input"]);
    if (input.length === 0 || input.some((f) => STDIN_PATH.test(f))) {
      return write("patch reads the patch from the pipe");
    }
  }
  if (is(c, "git")) {
    let at = 0; // past the global options; -C, --git-dir and the like take a value
    while (at < c.args.length && c.args[at].startsWith("-")) {
      at += GIT_VALUED.has(c.args[at]) ? 2 : 1;
    }
    const sub = c.args[at] ?? "";
    const rest = c.args.slice(at + 1).filter((a) => !a.startsWith("-") || a === "-");
    if (
      (sub === "apply" || sub === "am") &&
      (rest.length === 0 || rest.some((f) => STDIN_PATH.test(f)))
    ) {
      return write(`git ${sub} reads the patch from the pipe`);
    }
  }
  if (is(c, "uudecode") && optionValues(c.args, "o", ["output-file"]).length === 0) {
    return write("uudecode writes the file its input names");
  }
  return null;
}

/** Stdin-driven commands and writes of stages after a `|`. */
export const PIPE_INPUT: ArgRule = {
  id: "deny.pipe.write",
  programs: ["openssl", "tar", "gtar", "bsdtar", "pax", "cpio", "patch", "git", "uudecode"],
  escape: "after a |, openssl reads commands from the pipe (deny.pipe.commands); tar -x, cpio, " +
    "patch, git apply write the files the data names (deny.pipe.write)",
  check: pipeInputRule,
};
