/**
 * curl and wget: downloads into system or `.ssh` directories, config files, wgetrc commands.
 * @module
 */

import { w } from "../names.ts";
import { longOpt, optionValues, protectedPath } from "../options.ts";
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
  const bad = outs.find((p) => p !== "-" && protectedPath(p, c.protect));
  if (bad !== undefined) {
    return deny(
      `downloading into ${bad} (a system or .ssh directory, or the state dir) is refused`,
    );
  }
  return uploadHit(c, curl);
}

/** Options that send a local file's content (GTFOBins "file upload"), per tool. */
const CURL_UPLOAD = /^(-T|--upl|--upload-file)/;
const CURL_DATA = w(`
  data data-binary data-raw data-urlencode data-ascii json form form-string upload-file
`);

/**
 * curl/wget sending host files away: `-T file`, `-d @file`, `-F x=@file`,
 * `--post-file`. Moving files is what the file transfer of the room is for; a
 * command line must not carry them off unseen. Local sockets (`--unix-socket`)
 * reach daemons that act as root. Both count as network escapes.
 */
function uploadHit(c: Cmd, curl: boolean): Hit {
  const deny = (why: string): Hit => ({ rule: "deny.network.upload", why });
  for (let i = 0; i < c.args.length; i++) {
    const a = c.args[i];
    if (curl) {
      if (CURL_UPLOAD.test(a) || /^-[^-]*T/.test(a)) return deny(`curl ${a} uploads a file`);
      if (longOpt(a, "unix-socket") || longOpt(a, "abstract-unix-socket")) {
        return { rule: "deny.network.socket", why: `curl ${a} talks to a local daemon's socket` };
      }
      const long = CURL_DATA.some((o) => longOpt(a, o));
      const short = /^-[dF]/.test(a);
      if (long || short) {
        const value = a.includes("=") && long
          ? a.slice(a.indexOf("=") + 1)
          : short && a.length > 2
          ? a.slice(2)
          : c.args[i + 1] ?? "";
        if (/(^|=)[@<]/.test(value)) return deny(`curl ${a} ${value} sends a local file`);
      }
    } else if (["post-file", "body-file"].some((o) => longOpt(a, o))) {
      return deny(`wget ${a} uploads a file`);
    }
  }
  return null;
}

/** curl/wget writing into protected dirs, uploading files, reading config files or running commands. */
export const DOWNLOAD: ArgRule = {
  id: "deny.pipe-shell",
  programs: ["curl", "wget", "wget2"],
  check: downloadRule,
};
