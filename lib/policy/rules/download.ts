/**
 * curl and wget: downloads into system or `.ssh` directories, config files, wgetrc commands.
 * @module
 */

import { w } from "../names.ts";
import { longOpt, optionValues, systemPath } from "../options.ts";
import { type ArgRule, type Cmd, type Hit, is } from "../rule.ts";

/**
 * curl/wget: pipes are refused by the parser, so the remaining download-to-run
 * path is writing into a system or `.ssh` dir; also config files and wgetrc
 * commands (`-e`, `--use-askpass`), which can do either.
 */
function downloadRule(c: Cmd): Hit {
  const curl = is(c, "curl");
  const wget = is(c, "wget", "wget2");
  if (!curl && !wget) return null;
  const deny = (why: string): Hit => ({ rule: "deny.pipe-shell", why });
  if (curl && c.args.some((a) => a === "-K" || /^-[^-]*K/.test(a) || longOpt(a, "config"))) {
    return deny("curl --config reads options from a file that cannot be judged");
  }
  if (
    wget &&
    c.args.some((a) => /^-[^-]*e/.test(a) || longOpt(a, "execute") || longOpt(a, "use-askpass"))
  ) {
    return deny("wget --execute/--use-askpass can run a command");
  }
  const outs = curl
    ? optionValues(
      c.args,
      "oDc",
      w(`
      output output-dir dump-header cookie-jar trace trace-ascii stderr libcurl etag-save hsts
      alt-svc
    `),
    )
    : optionValues(c.args, "OoaP", w("output-document output-file append-output directory-prefix"));
  const bad = outs.find((p) => p !== "-" && systemPath(p));
  return bad === undefined
    ? null
    : deny(`downloading into ${bad} (a system or .ssh directory) is refused`);
}

/** curl/wget writing into system dirs, reading config files or running commands. */
export const DOWNLOAD: ArgRule = {
  id: "deny.pipe-shell",
  programs: ["curl", "wget", "wget2"],
  check: downloadRule,
};
