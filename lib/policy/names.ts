/**
 * Program names as the policy sees them: normalised (NFKC, lower case, base
 * name), with version suffixes dropped, and the families of programs refused by
 * name alone (shells, wrappers, power, disks, …).
 * @module
 */

/** Splits a space-separated word list; keeps the tables short. */
export const w = (words: string): string[] => words.trim().split(/\s+/);

/** Multi-call binaries act by argv[0], which is the link name: judge that only. */
export const MULTI_CALL = new Set(["busybox", "toybox", "kmod"]);

/** Shells, interpreters and programs that run arbitrary code they are given. */
export const SHELLS = w(`
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
export const SHELL_SET = new Set(SHELLS);

/** Base name after NFKC, lower-cased: the form every name comparison uses. */
export function normName(raw: string): string {
  const n = raw.normalize("NFKC");
  return n.slice(n.lastIndexOf("/") + 1).toLowerCase();
}

/**
 * Match keys of one program name: itself, without a version suffix, and the part
 * before the first dot (`python3.11` -> python3, python; `vim.basic` -> vim).
 */
export function nameKeys(raw: string): string[] {
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

export function familyOf(keys: Set<string>): (typeof FAMILY_SETS)[number] | undefined {
  return FAMILY_SETS.find((f) =>
    [...keys].some((k) => f.set.has(k) || (f.prefixes ?? []).some((p) => k.startsWith(p)))
  );
}
