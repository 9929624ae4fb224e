/**
 * L4 Airlock step 4: the command policy. It judges the
 * parsed argv after the program was resolved in the bin dir, so quoting, spacing,
 * `./`, full paths and case tricks are already gone; program names are matched
 * case-insensitively, NFKC-normalised (fullwidth `ｒｅｂｏｏｔ` is `reboot`), with
 * version suffixes dropped (`python3.11`, `vim.basic`), under both the bin-dir
 * name and the symlink target's name (`ls -> bash` is a shell).
 *
 * Order: hidden Unicode, then the built-in deny rules, then the policy file's
 * `deny`, then its `allow` / the mode. Built-in rules cannot be overridden.
 *
 * Built-in rule ids (stable: they go into replies and the audit log):
 *
 * - `deny.parse`: empty argv (in `checkCommand` also every parser refusal).
 * - `deny.unicode`: invisible, format or control characters in any word;
 *   non-ASCII or look-alike letters in the program name.
 * - `deny.power`: shutdown reboot poweroff halt init telinit kexec; systemctl
 *   power verbs, power targets and `-i`; D-Bus power calls; /proc/sysrq-trigger.
 * - `deny.disk`: mkfs* fdisk sfdisk cfdisk parted wipefs blkdiscard …; dd with
 *   `if=`/`of=` under /dev; shred, tee, cp … onto block devices.
 * - `deny.shell`: shells and interpreters (sh bash busybox python* perl node …).
 * - `deny.privilege`: sudo su doas pkexec runuser run0 sg newgrp.
 * - `deny.user-mgmt`: passwd useradd userdel usermod group* chpasswd visudo ….
 * - `deny.wrapper`: programs that run another program (env nice timeout nohup
 *   setsid stdbuf xargs chroot strace gdb script crontab at …), `ip netns exec`.
 * - `deny.escape.pager`, `deny.escape.editor`: less more man …, vi vim nano ed …,
 *   `systemctl edit`, and any `*pager=`/`*editor=` argument.
 * - `deny.escape.find-exec` (-exec -execdir -ok -okdir), `deny.escape.find-write`
 *   (-fprint* -fls -delete).
 * - `deny.escape.awk`, `deny.escape.sed`, `deny.escape.tar`, `deny.escape.git`:
 *   the GTFOBins escapes of these programs (see each rule below).
 * - `deny.escape.exec-option`: options that name a program to run (sort
 *   --compress-program, split --filter, zip -TT, rsync -e, tcpdump -z, …).
 * - `deny.escape.interactive`: clients with a shell escape (psql sqlite3 ftp mail).
 * - `deny.network`: ssh scp sftp telnet nc ncat socat rsh ….
 * - `deny.pipe-shell`: a quoted `|` followed by a shell; curl/wget writing into
 *   system or `.ssh` dirs, reading a config file, or running wgetrc commands.
 * - `deny.rm-root`: recursive rm of `/` or a top-level dir (`/etc`, `/*`,
 *   `/usr/`, `..` climbs), `--no-preserve-root`; mv of such a dir.
 * - `deny.chmod-root`: chmod/chown/chgrp -R of `/` or a top-level dir.
 * - `deny.kernel`: insmod rmmod modprobe. `deny.logs`: journalctl --vacuum-*,
 *   --rotate, --flush … (the journal is part of the audit trail).
 * - From the policy file: `deny.policy:<pattern>`, `deny.not-allowlisted`,
 *   `allow.policy:<pattern>`; otherwise `allow.default`.
 *
 * Wrappers are refused outright rather than judged by the program they wrap:
 * every wrapper has its own option syntax, and one missed option would let the
 * wrapped program through. Run the program directly instead.
 * @module
 */

/** Outcome of {@linkcode judge}. */
export interface Verdict {
  verdict: "allow" | "deny";
  /** Stable id of the deciding rule, e.g. `deny.power`, `allow.default`. */
  rule: string;
  /** One sentence for the operator. */
  reason: string;
}

/** A policy-file pattern: words matched against argv; `*` one word, trailing `**` the rest. */
export interface Pattern {
  /** The pattern as written, used in rule ids. */
  text: string;
  tokens: string[];
}

/** The effective command policy. */
export interface Policy {
  /** `allowlist`: only commands matching an `allow` pattern run. */
  mode: "denylist" | "allowlist";
  allow: Pattern[];
  deny: Pattern[];
  /** The file it came from, or null for the built-in default. */
  source: string | null;
}

/** Names of the resolved program: the bin-dir entry and its final symlink target. */
export interface ProgramContext {
  name: string;
  realName: string;
}

/** The policy without a file: denylist mode, built-in rules only. */
export const DEFAULT_POLICY: Policy = Object.freeze({
  mode: "denylist",
  allow: [],
  deny: [],
  source: null,
}) as Policy;

type Hit = { rule: string; why: string } | null;

/** Splits a space-separated word list; keeps the tables below short. */
const w = (words: string): string[] => words.trim().split(/\s+/);

// ---------------------------------------------------------------- program names

/** Multi-call binaries act by argv[0], which is the link name: judge that only. */
const MULTI_CALL = new Set(["busybox", "toybox", "kmod"]);

/** Shells, interpreters and programs that run arbitrary code they are given. */
const SHELLS = w(`
  sh bash rbash dash ash zsh ksh ksh93 mksh pdksh oksh yash fish csh tcsh rc elvish nu xonsh
  pwsh busybox toybox python pypy perl ruby irb node nodejs deno bun php lua luajit tclsh
  wish jshell jrunscript r rscript guile julia erl escript elixir iex gjs sbcl clisp ocaml
  ghci runghc dc screen tmux mc git-shell make gmake npm npx pip gem
`);

/** Program-name families, checked in this order (sudo is privilege, not wrapper). */
const FAMILIES: ReadonlyArray<{ rule: string; why: string; names: string[]; prefixes?: string[] }> =
  [
    {
      rule: "deny.power",
      why: "powers off, restarts or suspends the host",
      names: w(`
        shutdown reboot poweroff halt init telinit kexec systemd-shutdown coldreboot uadmin
      `),
    },
    {
      rule: "deny.disk",
      why: "partitions, formats or wipes disks",
      names: w(`
        mke2fs mkswap mkdosfs mkntfs mkexfatfs fdisk sfdisk cfdisk gdisk sgdisk cgdisk
        fixparts parted wipefs blkdiscard lvremove vgremove pvremove mdadm cryptsetup
      `),
      prefixes: w("mkfs"),
    },
    { rule: "deny.shell", why: "is a shell or interpreter: it runs arbitrary code", names: SHELLS },
    {
      rule: "deny.privilege",
      why: "switches user or gains privileges",
      names: w("sudo sudoedit su doas pkexec runuser run0 sg newgrp login"),
    },
    {
      rule: "deny.user-mgmt",
      why: "manages users, groups or passwords",
      names: w(`
        passwd chpasswd chage useradd userdel usermod adduser deluser addgroup delgroup
        groupadd groupdel groupmod gpasswd newusers chsh chfn vipw vigr visudo pwconv
        pwunconv grpconv grpunconv
      `),
    },
    {
      rule: "deny.wrapper",
      why: "runs another program, which would escape this policy; run the program directly",
      names: w(`
        env nice ionice timeout nohup setsid stdbuf xargs chroot unshare nsenter flock watch
        time strace ltrace gdb script expect at batch crontab taskset chrt numactl cgexec
        systemd-run systemd-nspawn setpriv setarch linux32 linux64 i386 x86_64 uname26 prlimit
        capsh firejail bwrap run-parts parallel fakeroot faketime eatmydata chpst runcon
        valgrind perf catchsegv ld.so rlwrap dbus-run-session ssh-agent start-stop-daemon
        daemonize sshpass unbuffer logsave openvt chronic ifne pee sem
      `),
      prefixes: w("ld-linux"),
    },
    {
      rule: "deny.escape.pager",
      why: "is a pager, which can open a shell from the terminal",
      names: w("less more most pg man pager sensible-pager w3m lynx links elinks"),
    },
    {
      rule: "deny.escape.editor",
      why: "is an editor, which can open a shell or write any file",
      names: w(`
        vi vim nvim view vimdiff rvim rview gvim evim ex nano rnano pico emacs emacs-nox
        emacsclient ed red joe jed mcedit micro ne editor sensible-editor vipe
      `),
    },
    {
      rule: "deny.network",
      why: "opens a remote shell or a raw network channel",
      names: w("ssh scp sftp slogin rsh rlogin rcp rexec telnet nc ncat netcat socat mosh tftp"),
    },
    {
      rule: "deny.escape.interactive",
      why: "is an interactive client with a shell escape",
      names: w("psql mysql mariadb sqlite3 ftp mail mailx s-nail bsd-mailx"),
    },
    {
      rule: "deny.kernel",
      why: "loads or unloads kernel modules",
      names: w("insmod rmmod modprobe"),
    },
  ];

const FAMILY_SETS = FAMILIES.map((f) => ({ ...f, set: new Set(f.names) }));
const SHELL_SET = new Set(SHELLS);

/** Base name after NFKC, lower-cased: the form every name comparison uses. */
function normName(raw: string): string {
  const n = raw.normalize("NFKC");
  return n.slice(n.lastIndexOf("/") + 1).toLowerCase();
}

/**
 * Match keys of one program name: itself, without a version suffix, and the part
 * before the first dot (`python3.11` -> python3, python; `vim.basic` -> vim).
 */
function nameKeys(raw: string): string[] {
  const n = normName(raw);
  const keys = new Set<string>();
  for (const k of [n, n.split(".")[0]]) {
    if (k === "") continue;
    keys.add(k);
    const stem = k.replace(/[\d._-]+$/, "");
    if (stem !== "") keys.add(stem);
  }
  return [...keys];
}

function familyOf(keys: Set<string>): (typeof FAMILY_SETS)[number] | undefined {
  return FAMILY_SETS.find((f) =>
    [...keys].some((k) => f.set.has(k) || (f.prefixes ?? []).some((p) => k.startsWith(p)))
  );
}

// ------------------------------------------------------------------- Unicode

/**
 * Characters that hide what runs: controls, format characters (zero-width,
 * bidi), private/unassigned code points, spaces other than ASCII space, Hangul
 * fillers, the combining grapheme joiner and variation selectors.
 */
const HIDDEN = new RegExp(
  "[\\p{Cc}\\p{Cf}\\p{Co}\\p{Cn}\\p{Cs}\\p{Zl}\\p{Zp}" +
    "\\u00A0\\u1680\\u2000-\\u200A\\u202F\\u205F\\u3000" +
    "\\u034F\\u115F\\u1160\\u3164\\uFFA0\\u180B-\\u180F\\uFE00-\\uFE0F\\u{E0100}-\\u{E01EF}]",
  "u",
);

function hiddenChar(s: string): string | null {
  for (const ch of s) {
    if (ch === "\t" || ch === "\n") continue; // quoted tabs and newlines are visible
    if (HIDDEN.test(ch)) {
      return `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
    }
  }
  return null;
}

// ------------------------------------------------------------ argument helpers

/**
 * True if `arg` is `--name` or any abbreviation of it (`--rec` for `--recursive`):
 * GNU getopt_long accepts unambiguous prefixes, and an ambiguous one fails
 * anyway, so matching every prefix only ever refuses more.
 */
function longOpt(arg: string, name: string): boolean {
  const n = arg.split("=")[0];
  return n.length >= 3 && n.startsWith("--") && `--${name}`.startsWith(n);
}

/** True if `arg` is a cluster of short options (`-rf`) containing one of `letters`. */
function shortHas(arg: string, letters: string): boolean {
  return /^-[^-]/.test(arg) && [...arg.slice(1)].some((c) => letters.includes(c));
}

/** Value of a watched option: attached (`-o/x`, `--output=/x`) or the next argument. */
function optionValues(args: string[], short: string, long: string[]): string[] {
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
  const segs: string[] = [];
  for (const s of path.split("/")) {
    if (s === "" || s === ".") continue;
    if (s === "..") segs.pop();
    else if (/[*?[]/.test(s)) break;
    else segs.push(s);
  }
  return segs.length;
}

const nearRoot = (p: string): boolean => {
  const d = rootDepth(p);
  return d !== null && d <= 1;
};

/** Non-option arguments (after `--`, everything), for rm/chmod-like programs. */
function operands(args: string[]): string[] {
  const out: string[] = [];
  let end = false;
  for (const a of args) {
    if (!end && a === "--") end = true;
    else if (end || !a.startsWith("-") || a === "-") out.push(a);
  }
  return out;
}

/** Block and memory devices, bare or as `of=/dev/…`. */
const BLOCK_DEV = new RegExp(
  "(^|=)/dev/(sd|hd|vd|xvd|nvme|mmcblk|md|dm-|loop|sr\\d|mapper/|disk/|block/|mtdblock|zram|" +
    "nbd|rbd|bcache|fd\\d|ram\\d|mem$|kmem$|port$|root$)",
);
const WRITERS = ["tee", "cp", "mv", "install", "truncate", "dd", "fallocate", "shred", "rsync"];

const SYSTEM_TOP = new Set(w("bin boot dev etc lib lib32 lib64 libx32 proc root sbin sys usr"));

/** True for a path in a system directory or an `.ssh` dir: no download may land there. */
function systemPath(p: string): boolean {
  if (p.split("/").includes(".ssh")) return true;
  if (!p.startsWith("/")) return false;
  const segs = p.split("/").filter((s) => s !== "" && s !== ".");
  return SYSTEM_TOP.has(segs[0] ?? "") || (segs[0] === "var" && segs[1] === "spool") ||
    segs.length === 0;
}

// ----------------------------------------------------------- argument rules

interface Cmd {
  keys: Set<string>;
  args: string[];
}

const is = (c: Cmd, ...names: string[]): boolean => names.some((n) => c.keys.has(n));

const POWER_VERBS = new Set(w(`
  poweroff reboot halt kexec soft-reboot suspend hibernate hybrid-sleep suspend-then-hibernate
  sleep rescue emergency isolate default exit switch-root
`));
const POWER_TARGETS = w(`
  poweroff reboot halt kexec soft-reboot suspend hibernate hybrid-sleep
  suspend-then-hibernate sleep rescue emergency ctrl-alt-del shutdown final exit
  system-update factory-reset initrd-switch-root
`);
const POWER_TARGET = new RegExp(`^(${POWER_TARGETS.join("|")})\\.target$`, "i");
const POWER_OPTS = w(`
  ignore-inhibitors firmware-setup boot-loader-menu boot-loader-entry reboot-argument when
`);

function systemctlRule(c: Cmd): Hit {
  if (!is(c, "systemctl")) return null;
  for (const a of c.args) {
    const low = a.toLowerCase();
    if (POWER_VERBS.has(low)) {
      return {
        rule: "deny.power",
        why: `"systemctl ${low}" changes the power state or boot target`,
      };
    }
    if (POWER_TARGET.test(a)) {
      return { rule: "deny.power", why: `${a} powers off, restarts or isolates the host` };
    }
    if (POWER_OPTS.some((o) => longOpt(a, o)) || shortHas(a, "i")) {
      return { rule: "deny.power", why: `${a} is a power-management option of systemctl` };
    }
    if (low === "edit") {
      return { rule: "deny.escape.editor", why: `"systemctl edit" opens an editor` };
    }
  }
  return null;
}

function dbusPowerRule(c: Cmd): Hit {
  if (!is(c, "busctl", "dbus-send", "gdbus", "qdbus")) return null;
  const hit = c.args.find((a) =>
    /power_?off|reboot|halt|kexec|suspend|hibernate|hybrid_?sleep|sleep|isolate/i.test(a)
  );
  return hit
    ? { rule: "deny.power", why: `the D-Bus call "${hit}" can change the power state` }
    : null;
}

function writerRule(c: Cmd): Hit {
  if (!WRITERS.some((w) => c.keys.has(w))) return null;
  if (c.args.some((a) => a.includes("/proc/sysrq-trigger"))) {
    return { rule: "deny.power", why: "writing /proc/sysrq-trigger can reboot or crash the host" };
  }
  const dev = c.args.find((a) => BLOCK_DEV.test(a));
  if (dev) {
    return {
      rule: "deny.disk",
      why: `${dev} is a block or memory device; writing it destroys data`,
    };
  }
  return null;
}

function diskArgRule(c: Cmd): Hit {
  if (is(c, "dd")) {
    const io = c.args.find((a) => /^(if|of)=\/dev\//i.test(a));
    if (io) return { rule: "deny.disk", why: `dd with ${io} reads or writes a raw device` };
  }
  if (is(c, "shred") && operands(c.args).some((a) => a.startsWith("/dev/"))) {
    return { rule: "deny.disk", why: "shred of a device destroys its data" };
  }
  if (is(c, "hdparm")) {
    const bad = c.args.find((a) =>
      /^--(security-(erase|set-pass|disable|unlock)|trim-sector|write-sector|fwdownload)/.test(a) ||
      /^--(dco-(restore|set)|make-bad-sector)/.test(a)
    );
    if (bad) return { rule: "deny.disk", why: `hdparm ${bad} can destroy data on the disk` };
  }
  if (is(c, "zpool", "zfs") && c.args.some((a) => a === "destroy" || a === "labelclear")) {
    return { rule: "deny.disk", why: "destroys a ZFS pool or dataset" };
  }
  if (is(c, "badblocks") && c.args.some((a) => shortHas(a, "wn"))) {
    return { rule: "deny.disk", why: "badblocks -w/-n writes over the disk" };
  }
  return null;
}

/** rm -r of `/` or a top-level dir (or with --no-preserve-root); mv of such a dir. */
function rmRule(c: Cmd): Hit {
  if (is(c, "rm")) {
    let recursive = false;
    for (const a of c.args) {
      if (a === "--") break;
      if (longOpt(a, "no-preserve-root")) {
        return { rule: "deny.rm-root", why: "--no-preserve-root removes the protection of /" };
      }
      if (longOpt(a, "recursive") || shortHas(a, "rR")) recursive = true;
    }
    const target = operands(c.args).find(nearRoot);
    if (recursive && target !== undefined) {
      return {
        rule: "deny.rm-root",
        why: `recursive rm of "${target}" would delete / or a top-level directory`,
      };
    }
  }
  if (is(c, "mv")) {
    // Every operand but the destination is a source; with -t all of them are.
    const hasT = c.args.some((a) => longOpt(a, "target-directory") || shortHas(a, "t"));
    const ops = operands(c.args);
    const target = (hasT ? ops : ops.slice(0, -1)).find(nearRoot);
    if (target !== undefined) {
      return {
        rule: "deny.rm-root",
        why: `moving "${target}" would take away / or a top-level directory`,
      };
    }
  }
  return null;
}

function chmodRule(c: Cmd): Hit {
  if (!is(c, "chmod", "chown", "chgrp", "setfacl", "chattr", "chcon")) return null;
  const recursive = c.args.some((a) => longOpt(a, "recursive") || shortHas(a, "R"));
  const target = operands(c.args).find(nearRoot);
  if (recursive && target !== undefined) {
    return {
      rule: "deny.chmod-root",
      why: `recursive change of "${target}" would break / or a top-level directory`,
    };
  }
  return null;
}

const FIND_EXEC = new Set(["-exec", "-execdir", "-ok", "-okdir"]);
const FIND_WRITE = new Set(["-fprint", "-fprint0", "-fprintf", "-fls", "-delete"]);

function findRule(c: Cmd): Hit {
  if (!is(c, "find")) return null;
  for (const a of c.args) {
    const low = a.toLowerCase();
    if (FIND_EXEC.has(low)) {
      return { rule: "deny.escape.find-exec", why: `find ${a} runs a command` };
    }
    if (FIND_WRITE.has(low)) {
      return { rule: "deny.escape.find-write", why: `find ${a} writes or deletes files` };
    }
  }
  return null;
}

const AWK_CODE = /system[\s\\]*\(|getline|\||@\s*[A-Za-z_]|\/inet/;
const AWK_FILE_OPTS = w("file include load exec debug");

/**
 * awk: no program from a file (`-f`, `-i`, `-E`, `-W exec`) or the debugger, and
 * no `system(`, `getline`, `|`, gawk `@`-calls or `/inet` sockets. Every word is
 * checked except the values of `-F` and `-v` (data), so it does not matter which
 * word awk takes as the program.
 */
function awkRule(c: Cmd): Hit {
  if (!is(c, "awk", "gawk", "mawk", "nawk", "original-awk", "goawk", "one-true-awk")) return null;
  for (let i = 0; i < c.args.length; i++) {
    const a = c.args[i];
    if (a === "-F" || a === "-v") i++;
    if (a.startsWith("-F") || a.startsWith("-v")) continue;
    if (shortHas(a, "fiEWlD") || AWK_FILE_OPTS.some((o) => longOpt(a, o))) {
      return {
        rule: "deny.escape.awk",
        why: `awk ${a}: a program from a file, an extension or the debugger cannot be judged`,
      };
    }
    if (AWK_CODE.test(a)) {
      return {
        rule: "deny.escape.awk",
        why: "the awk program uses system(), getline, a pipe, an @-call or /inet: " +
          "it could run commands",
      };
    }
  }
  return null;
}

/** tar options that run a program (GNU tar; abbreviations included via longOpt). */
const TAR_LONG = w(`
  checkpoint-action to-command use-compress-program rsh-command rmt-command info-script
  new-volume-script
`);

/** tar: the long options above, `-I`/`-F` in any short cluster or old-style first word. */
function tarRule(c: Cmd): Hit {
  if (!is(c, "tar", "gtar", "bsdtar")) return null;
  for (const [i, a] of c.args.entries()) {
    const n = a.split("=")[0];
    // "--checkpoint" is an option of its own: an exact name wins over prefixes.
    const long = n !== "--checkpoint" && TAR_LONG.some((o) => longOpt(a, o));
    const short = shortHas(a, "IF") || (i === 0 && /^[A-Za-z]+$/.test(a) && /[IF]/.test(a));
    if (long || short) return { rule: "deny.escape.tar", why: `tar ${a} runs a command` };
  }
  return null;
}

const GIT_SUB_DENY = new Set(w(`
  config help difftool mergetool filter-branch instaweb web--browse daemon send-email credential
  credential-store credential-cache upload-pack receive-pack shell
`));
const GIT_RUN_OPTS = w("upload-pack receive-pack exec extcmd open-files-in-pager template config");
const GIT_VALUE_GLOBALS = new Set(w(`
  -C --git-dir --work-tree --namespace --super-prefix --attr-source --list-cmds
`));
const GIT_FLAGS = new Set(w(`
  -P --no-pager --no-replace-objects --no-lazy-fetch --no-optional-locks --no-advice --bare
  --literal-pathspecs --glob-pathspecs --noglob-pathspecs --icase-pathspecs --html-path
  --man-path --info-path --version
`));

/**
 * git: no `-c`/`--config-env`/`--exec-path`/`-p` before the subcommand, no
 * unknown global option (it could hide the subcommand), no subcommand that runs
 * an editor, pager or command, and no option that names a program to run.
 */
function gitRule(c: Cmd): Hit {
  if (!is(c, "git")) return null;
  const deny = (why: string): Hit => ({ rule: "deny.escape.git", why });
  let i = 0;
  for (; i < c.args.length; i++) {
    const a = c.args[i];
    if (a === "-c" || /^-c./.test(a) || a.startsWith("--config-env")) {
      return deny(`git ${a} sets configuration, which can name a command to run (core.pager, …)`);
    }
    if (a === "-p" || a === "--paginate") return deny(`git ${a} starts a pager`);
    if (a.startsWith("--exec-path")) {
      return deny("git --exec-path changes where git finds programs");
    }
    if (a === "--help") return deny("git --help opens the manual viewer");
    if (!a.startsWith("-")) break;
    if (GIT_VALUE_GLOBALS.has(a)) i++;
    else if (!GIT_FLAGS.has(a) && !GIT_VALUE_GLOBALS.has(a.split("=")[0])) {
      // An unknown option may take a value, and then the subcommand is unknown.
      return deny(`git ${a}: unknown option before the subcommand; cannot tell what runs`);
    }
  }
  const sub = (c.args[i] ?? "").toLowerCase();
  const rest = c.args.slice(i + 1);
  if (GIT_SUB_DENY.has(sub)) return deny(`"git ${sub}" can run an editor, pager or command`);
  if (sub === "submodule" && rest.includes("foreach")) {
    return deny("git submodule foreach runs a command");
  }
  if (sub === "bisect" && rest.includes("run")) return deny("git bisect run runs a command");
  if (
    sub === "rebase" &&
    rest.some((a) => shortHas(a, "xi") || longOpt(a, "exec") || longOpt(a, "interactive"))
  ) {
    return deny("git rebase --exec/--interactive runs a command or an editor");
  }
  for (const a of rest) {
    if (GIT_RUN_OPTS.some((o) => longOpt(a, o))) {
      return deny(`git ${sub} ${a} can run a command`);
    }
    if (a === "--help") return deny("git --help opens the manual viewer");
    if (sub === "grep" && shortHas(a, "O")) return deny("git grep -O opens files in a pager");
    if ((sub === "clone" || sub === "ls-remote") && (shortHas(a, "uc"))) {
      return deny(`git ${sub} ${a} can name a command to run`);
    }
  }
  return null;
}

/** Why a sed script is risky (`e`, `w`, `W`, `s///e`, `s///w`, unparsable), or null. */
function sedScriptRisk(s: string, brackets: boolean): string | null {
  let i = 0;
  const n = s.length;
  const digits = () => {
    while (i < n && /\d/.test(s[i])) i++;
  };
  const spaces = () => {
    while (i < n && (s[i] === " " || s[i] === "\t")) i++;
  };
  const toEol = (stop = "\n") => {
    while (i < n && !stop.includes(s[i])) i++;
  };
  /** Reads up to the unescaped delimiter `d`; GNU treats `[...]` in regexes as literal. */
  const delimited = (d: string, regex: boolean): boolean => {
    while (i < n) {
      const ch = s[i++];
      if (ch === "\\") {
        i++;
      } else if (ch === d) {
        return true;
      } else if (ch === "[" && regex && brackets && d !== "[") {
        if (s[i] === "^") i++;
        if (s[i] === "]") i++;
        while (i < n && s[i] !== "]") {
          const cls = s[i] === "[" && ":.=".includes(s[i + 1] ?? "") ? s[i + 1] : null;
          if (cls) {
            const end = s.indexOf(`${cls}]`, i + 2);
            if (end < 0) return false;
            i = end + 2;
          } else i++;
        }
        if (i >= n) return false;
        i++;
      }
    }
    return false;
  };
  const address = (): boolean | null => {
    if (/\d/.test(s[i] ?? "")) {
      digits();
      if (s[i] === "~") {
        i++;
        digits();
      }
    } else if (s[i] === "$") i++;
    else if (s[i] === "/" || s[i] === "\\") {
      const d = s[i] === "/" ? "/" : s[i + 1];
      i += s[i] === "/" ? 1 : 2;
      if (d === undefined || !delimited(d, true)) return null;
      while (s[i] === "I" || s[i] === "M") i++;
    } else return false;
    return true;
  };

  while (i < n) {
    while (i < n && /[\s;]/.test(s[i])) i++;
    if (i >= n) break;
    const a1 = address();
    if (a1 === null) return "an address is not terminated";
    if (a1) {
      spaces();
      if (s[i] === ",") {
        i++;
        spaces();
        if (s[i] === "+" || s[i] === "~") {
          i++;
          digits();
        } else if (address() !== true) return "a second address cannot be read";
      }
    }
    spaces();
    while (s[i] === "!") {
      i++;
      spaces();
    }
    const cmd = s[i++];
    if (cmd === undefined) return "an address has no command";
    if ("{}=dDgGhHnNpPxzF".includes(cmd)) continue;
    if (cmd === "#") toEol();
    else if (cmd === ":" || "btTv".includes(cmd)) toEol(";\n}");
    else if ("aic".includes(cmd)) {
      while (i < n && s[i] !== "\n") i += s[i] === "\\" ? 2 : 1;
    } else if ("rR".includes(cmd)) toEol();
    else if ("qQlL".includes(cmd)) {
      spaces();
      digits();
    } else if (cmd === "e") return "the e command runs a shell command";
    else if (cmd === "w" || cmd === "W") return `the ${cmd} command writes a file`;
    else if (cmd === "y") {
      const d = s[i++];
      if (!d || d === "\\" || d === "\n" || !delimited(d, false) || !delimited(d, false)) {
        return "a y command is not terminated";
      }
    } else if (cmd === "s") {
      const d = s[i++];
      if (!d || d === "\\" || d === "\n" || !delimited(d, true) || !delimited(d, false)) {
        return "an s command is not terminated";
      }
      while (i < n && !/[\s;}#]/.test(s[i])) {
        const f = s[i++];
        if (f === "e") return "the s///e flag runs the pattern space as a shell command";
        if (f === "w") return "the s///w flag writes a file";
        if (!/[gpiImM\d]/.test(f)) return `unknown s flag "${f}"`;
      }
    } else return `unknown sed command "${cmd}"`;
  }
  return null;
}

/**
 * sed: no script from a file, and no `e`, `w`, `W`, `s///e` or `s///w` in the
 * script (found by a small parser of GNU sed syntax; anything it cannot read is
 * refused). `--sandbox` makes sed itself refuse those, so it is then allowed.
 * `-i` (in place) is allowed: it writes only what the exec user may write.
 */
function sedRule(c: Cmd): Hit {
  if (!is(c, "sed", "gsed", "ssed")) return null;
  const scripts: string[] = [];
  const ops: string[] = [];
  let fromOption = false;
  let sandbox = false;
  const deny = (why: string): Hit => ({ rule: "deny.escape.sed", why });
  for (let i = 0; i < c.args.length; i++) {
    const a = c.args[i];
    if (a === "--") {
      ops.push(...c.args.slice(i + 1));
      break;
    }
    if (a.startsWith("--")) {
      const v = a.includes("=") ? a.slice(a.indexOf("=") + 1) : undefined;
      if (a === "--sandbox") sandbox = true; // exact: a misread here would allow
      else if (longOpt(a, "expression")) {
        scripts.push(v ?? c.args[++i] ?? "");
        fromOption = true;
      } else if (longOpt(a, "file")) return deny(`sed ${a}: a script from a file cannot be judged`);
      else if (longOpt(a, "line-length") && v === undefined && /^\d+$/.test(c.args[i + 1])) i++;
    } else if (/^-./.test(a)) {
      for (let j = 1; j < a.length; j++) {
        const ch = a[j];
        if (ch === "e") {
          scripts.push(a.slice(j + 1) || (c.args[++i] ?? ""));
          fromOption = true;
          break;
        }
        if (ch === "f") return deny(`sed ${a}: a script from a file cannot be judged`);
        if (ch === "l") {
          // Skip only a number, so a misread option can never hide the script.
          if (j === a.length - 1 && /^\d+$/.test(c.args[i + 1] ?? "")) i++;
          break;
        }
        if (ch === "i") break; // the rest is a backup suffix
      }
    } else ops.push(a);
  }
  if (sandbox) return null; // GNU sed itself then refuses e, w and r
  if (!fromOption && ops.length > 0) scripts.push(ops[0]);
  // GNU joins -e fragments with newlines; judge each and the join, with and
  // without bracket awareness, so a parser mismatch can only ever refuse.
  for (const script of [...scripts, scripts.join("\n")]) {
    for (const brackets of [true, false]) {
      const risk = sedScriptRisk(script, brackets);
      if (risk) return deny(`${risk} (use --sandbox to be sure)`);
    }
  }
  return null;
}

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

/** Options that name a program to run, per program (GTFOBins). */
const EXEC_OPTIONS: ReadonlyArray<
  { names: string[]; short?: string; long: string[]; exact?: string }
> = [
  { names: w("sort"), long: ["compress-program"] },
  { names: w("split"), long: ["filter"] },
  { names: w("zip"), long: ["unzip-command"], exact: "-TT" },
  { names: w("rsync"), short: "e", long: ["rsh", "rsync-path"] },
  { names: w("tcpdump"), short: "z", long: [] },
  { names: w("cpio"), long: ["rsh-command"] },
  { names: w("nmap"), long: ["script", "interactive"] },
];

function execOptionRule(c: Cmd): Hit {
  for (const e of EXEC_OPTIONS) {
    if (!is(c, ...e.names)) continue;
    const a = c.args.find((x) =>
      e.long.some((l) => longOpt(x, l)) || (e.short !== undefined && shortHas(x, e.short)) ||
      x === e.exact
    );
    if (a) return { rule: "deny.escape.exec-option", why: `${e.names[0]} ${a} runs a command` };
  }
  if (is(c, "ip") && c.args.includes("exec")) {
    return { rule: "deny.wrapper", why: "ip netns/vrf exec runs another program" };
  }
  return null;
}

function journalRule(c: Cmd): Hit {
  if (!is(c, "journalctl")) return null;
  const a = c.args.find((x) =>
    w(`
      vacuum-size vacuum-time vacuum-files rotate flush relinquish-var smart-relinquish-var
      setup-keys
    `)
      .some((o) => longOpt(x, o))
  );
  return a
    ? { rule: "deny.logs", why: `journalctl ${a} deletes, moves or rekeys the journal` }
    : null;
}

function pagerArgRule(c: Cmd): Hit {
  const a = c.args.find((x) =>
    /^[\w.-]*(pager|editor|visual)\s*=/i.test(x) || /^--(pager|editor)(=|$)/i.test(x)
  );
  return a
    ? { rule: "deny.escape.pager", why: `"${a}" sets a pager or editor, which can run a shell` }
    : null;
}

function pipeRule(c: Cmd): Hit {
  for (let i = 0; i + 1 < c.args.length; i++) {
    if (/^\|&?$/.test(c.args[i]) && nameKeys(c.args[i + 1]).some((k) => SHELL_SET.has(k))) {
      return {
        rule: "deny.pipe-shell",
        why: `piping into ${c.args[i + 1]} is refused (and pipes are not supported)`,
      };
    }
  }
  return null;
}

const ARG_RULES: ReadonlyArray<(c: Cmd) => Hit> = [
  systemctlRule,
  dbusPowerRule,
  writerRule,
  diskArgRule,
  rmRule,
  chmodRule,
  findRule,
  awkRule,
  tarRule,
  gitRule,
  sedRule,
  downloadRule,
  execOptionRule,
  journalRule,
  pagerArgRule,
  pipeRule,
];

// ------------------------------------------------------------------ patterns

/** True if `pattern` matches `argv`, whose program is `program` (normalised name). */
function matches(pattern: Pattern, argv: string[], programs: string[]): boolean {
  const t = pattern.tokens;
  if (!programs.includes(t[0].toLowerCase())) return false;
  for (let i = 1; i < t.length; i++) {
    if (t[i] === "**") return true;
    if (i >= argv.length || (t[i] !== "*" && t[i] !== argv[i])) return false;
  }
  return argv.length === t.length;
}

// ---------------------------------------------------------------------- judge

const deny = (rule: string, reason: string): Verdict => ({ verdict: "deny", rule, reason });

/**
 * Judges a parsed argv whose program resolved to `ctx` in the bin dir. Pure: no
 * file system access, so the monitor can call it again on the same request.
 */
export function judge(argv: string[], ctx: ProgramContext, policy: Policy): Verdict {
  if (argv.length === 0 || argv[0] === "") return deny("deny.parse", "empty command");
  for (const [i, a] of argv.entries()) {
    const ch = hiddenChar(a);
    if (ch) {
      return deny(
        "deny.unicode",
        `${
          i === 0 ? "the program name" : `argument ${i}`
        } contains the invisible or control character ${ch}; retype it`,
      );
    }
  }
  const label = ctx.name === ctx.realName
    ? `"${ctx.name}"`
    : `"${ctx.name}" (a link to ${ctx.realName})`;
  const names = [argv[0], ctx.name];
  if (!MULTI_CALL.has(normName(ctx.realName)) || normName(ctx.name) === normName(ctx.realName)) {
    names.push(ctx.realName);
  }
  const keys = new Set(names.flatMap(nameKeys));

  // `env` alone only lists the environment (`$ env` is how operators check for
  // leaks); with any other argument it is a wrapper.
  const envListing = keys.has("env") && argv.slice(1).every((a) => a === "-0" || a === "--null");
  const family = familyOf(keys);
  if (family && !(envListing && family.rule === "deny.wrapper")) {
    return deny(family.rule, `${label} ${family.why}`);
  }
  const odd = names.find((n) => normName(n) !== "" && !/^[\x21-\x7e]+$/.test(normName(n)));
  if (odd !== undefined) {
    return deny(
      "deny.unicode",
      `the program name "${odd}" has non-ASCII or look-alike characters; retype it`,
    );
  }

  const cmd: Cmd = { keys, args: argv.slice(1).map((a) => a.normalize("NFKC")) };
  for (const rule of ARG_RULES) {
    const hit = rule(cmd);
    if (hit) return deny(hit.rule, `${label}: ${hit.why}`);
  }

  const programs = [...new Set(names.map(normName))];
  const denied = policy.deny.find((p) => matches(p, argv, programs));
  if (denied) {
    return deny(`deny.policy:${denied.text}`, `refused by the policy pattern "${denied.text}"`);
  }
  const allowed = policy.allow.find((p) => matches(p, argv, [normName(ctx.name)]));
  if (allowed) {
    return {
      verdict: "allow",
      rule: `allow.policy:${allowed.text}`,
      reason: `allowed by "${allowed.text}"`,
    };
  }
  if (policy.mode === "allowlist") {
    return deny(
      "deny.not-allowlisted",
      `no allow pattern of the policy matches (allowlist mode${
        policy.source ? `, ${policy.source}` : ""
      })`,
    );
  }
  return { verdict: "allow", rule: "allow.default", reason: "no rule refuses it (denylist mode)" };
}

// ------------------------------------------------------------------ loading

const KEYS = new Set(["mode", "allow", "deny"]);

function parsePatterns(value: unknown, key: string, fail: (m: string) => never): Pattern[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) fail(`"${key}" must be an array of strings`);
  return (value as unknown[]).map((p, i) => {
    const where = `"${key}"[${i}]`;
    if (typeof p !== "string") fail(`${where} must be a string, not ${JSON.stringify(p)}`);
    const text = (p as string).trim().replace(/\s+/g, " ");
    if (text === "") fail(`${where} is empty`);
    if (/[\p{Cc}]/u.test(text)) fail(`${where} contains a control character`);
    const tokens = text.split(" ");
    if (/[*/]/.test(tokens[0])) {
      fail(`${where} "${text}": the first word must be a program name (no "*", no "/")`);
    }
    tokens.slice(1).forEach((t, j) => {
      if (t === "**" && j !== tokens.length - 2) {
        fail(`${where} "${text}": "**" may only be the last word`);
      }
      if (t !== "*" && t !== "**" && t.includes("*")) {
        fail(`${where} "${text}": "*" matches whole words only ("*" or a trailing "**")`);
      }
    });
    return { text, tokens };
  });
}

/**
 * Validates a parsed policy document. `source` names it in errors.
 *
 * @throws Error "policy file <source>: <problem>" on unknown keys, wrong types,
 * a missing or unknown mode, or an empty or malformed pattern.
 */
export function parsePolicy(value: unknown, source: string): Policy {
  const fail = (m: string): never => {
    throw new Error(`policy file ${source}: ${m}`);
  };
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    fail('must be a JSON object like {"mode": "denylist", "deny": ["cat /etc/shadow"]}');
  }
  const obj = value as Record<string, unknown>;
  for (const k of Object.keys(obj)) {
    if (!KEYS.has(k)) fail(`unknown key "${k}" (allowed: mode, allow, deny)`);
  }
  if (obj.mode !== "denylist" && obj.mode !== "allowlist") {
    fail(`"mode" must be "denylist" or "allowlist", not ${JSON.stringify(obj.mode ?? null)}`);
  }
  return {
    mode: obj.mode as Policy["mode"],
    allow: parsePatterns(obj.allow, "allow", fail),
    deny: parsePatterns(obj.deny, "deny", fail),
    source,
  };
}

/**
 * Loads the policy: {@linkcode DEFAULT_POLICY} without a path, else the JSON file
 * `{"mode": "denylist"|"allowlist", "allow": [...], "deny": [...]}`.
 *
 * @throws Error naming the file when it cannot be read, is not JSON, or is invalid.
 */
export async function loadPolicy(path?: string): Promise<Policy> {
  if (path === undefined) return DEFAULT_POLICY;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "not found" : (e as Error).message;
    throw new Error(`policy file ${path}: cannot be read: ${why}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Error(`policy file ${path}: not valid JSON: ${(e as Error).message}`);
  }
  return parsePolicy(value, path);
}
