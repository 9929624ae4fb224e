#!/bin/sh
# install.sh: installs the tibet-nc agent on a Linux host (or into a package
# staging dir, or into a system image). POSIX sh; run ./install.sh --help.
#
# Files next to this script are used when present (tibet-nc.env.example,
# tibet-nc.service); otherwise the copies embedded at the end of this file are.
# tests/install_test.ts checks that the embedded copies equal the shipped files.
set -eu

# ---------------------------------------------------------------------------
# Fixed locations: the defaults the agent itself uses (lib/config/config.ts) and
# the paths tibet-nc.service names.
ENV_FILE=/etc/tibet-nc.env
STATE_DIR=/var/lib/tibet-nc
BIN_DIR=/usr/local/tibet-nc-bin
AGENT_USER=tibet-nc
EXEC_USER=tibet-nc-exec
UNIT_NAME=tibet-nc.service
# Read-only diagnostics linked into the bin dir when present on the host. The
# agent's policy still judges every command (e.g. `systemctl status` runs,
# `systemctl poweroff` is refused).
SAFE_SET="uptime df free date whoami hostname uname echo ls cat ps id tty journalctl systemctl ip ss du lsblk w who last"
# Where those programs are looked for, in this order (never $PATH).
SEARCH_DIRS="/usr/bin /bin /usr/sbin /sbin"

PROG=install.sh
# The shipped files are looked for next to this script; when it is read from a
# pipe ($0 is the shell) the embedded copies are used.
SCRIPT_DIR=
if [ -f "$0" ]; then SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd); fi

usage() {
	cat <<EOF
usage: $PROG [--binary PATH | --url URL] [--sha256 HEX] [--root DIR] [--dry-run]
       $PROG --uninstall [--purge] [--root DIR] [--dry-run]

Installs the tibet-nc agent:
  \$PREFIX/bin/tibet-nc
      the binary, from --binary PATH or --url URL (https, fetched with curl or
      wget; there is no default download host)
  users $AGENT_USER and $EXEC_USER
      system users without login shell or home: the agent runs as $AGENT_USER,
      operators' commands as $EXEC_USER
  $ENV_FILE
      configuration, from tibet-nc.env.example (0600, owner $AGENT_USER); an
      existing file is never overwritten
  $STATE_DIR
      state dir (0700, owner $AGENT_USER)
  $BIN_DIR
      the only programs the agent runs (0755, root): symlinks to those of this
      default safe set of read-only diagnostics that exist on the host:
$(echo "$SAFE_SET" | fold -s -w 66 | sed 's/ *$//; s/^/        /')
  /etc/systemd/system/$UNIT_NAME
      the unit; then 'systemctl daemon-reload' if systemd is running

Running it again is safe: it reports what already exists and upgrades the binary
and the unit. It does not start the service: fill in $ENV_FILE, run
'tibet-nc login', then 'systemctl enable --now tibet-nc'.

options:
  --binary PATH   install this file as the binary
  --url URL       download the binary from URL (https only)
  --sha256 HEX    refuse a binary whose SHA-256 is not HEX
  --uninstall     stop and remove the service, binary, bin dir and users; keeps
                  $ENV_FILE and $STATE_DIR (the crypto identity and audit log)
  --purge         with --uninstall: remove those two as well
  --root DIR      operate on the system image mounted at DIR (image builders):
                  every path is under DIR, users are created in DIR/etc/passwd
                  with useradd --root; systemctl is not called. Needs root.
  --dry-run       print every action, change nothing (no root needed)
  -h, --help      this text

environment:
  PREFIX=/usr/local   the binary goes to \$PREFIX/bin/tibet-nc (the unit's
                      ExecStart= is rewritten to match)
  DESTDIR=DIR         packagers: stage the files under DIR without root. No users
                      are created and systemctl is not called: the commands a
                      package's postinst (postrm) must run are printed instead. The
                      unit goes to \$DESTDIR\$UNITDIR.
  UNITDIR=DIR         unit directory; default /usr/lib/systemd/system with DESTDIR,
                      /etc/systemd/system otherwise
EOF
}

# ---------------------------------------------------------------------------
say() { printf '%s\n' "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die() {
	printf '%s: error: %s\n' "$PROG" "$*" >&2
	exit 1
}

# Quotes one word for display so the printed commands can be pasted into a shell.
quote() {
	case $1 in
	'' | *[!A-Za-z0-9_./:=@%+,-]*) printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")" ;;
	*) printf '%s' "$1" ;;
	esac
}
show() {
	out=
	for w in "$@"; do out="$out${out:+ }$(quote "$w")"; done
	printf '%s\n' "$out"
}

# Runs a command, or only prints it with --dry-run.
act() {
	if [ "$DRY_RUN" = 1 ]; then
		printf 'would run: %s\n' "$(show "$@")"
	else
		printf '+ %s\n' "$(show "$@")"
		"$@"
	fi
}

# ---------------------------------------------------------------------------
BINARY=
URL=
SHA256=
ROOT=
UNINSTALL=0
PURGE=0
DRY_RUN=0

while [ $# -gt 0 ]; do
	case $1 in
	--binary)
		[ $# -ge 2 ] || die "--binary needs a path"
		BINARY=$2
		shift 2
		;;
	--binary=*)
		BINARY=${1#--binary=}
		shift
		;;
	--url)
		[ $# -ge 2 ] || die "--url needs a URL"
		URL=$2
		shift 2
		;;
	--url=*)
		URL=${1#--url=}
		shift
		;;
	--sha256)
		[ $# -ge 2 ] || die "--sha256 needs a hex digest"
		SHA256=$2
		shift 2
		;;
	--sha256=*)
		SHA256=${1#--sha256=}
		shift
		;;
	--root)
		[ $# -ge 2 ] || die "--root needs a directory"
		ROOT=$2
		shift 2
		;;
	--root=*)
		ROOT=${1#--root=}
		shift
		;;
	--uninstall)
		UNINSTALL=1
		shift
		;;
	--purge)
		PURGE=1
		shift
		;;
	--dry-run | -n)
		DRY_RUN=1
		shift
		;;
	-h | --help)
		usage
		exit 0
		;;
	*) die "unknown argument \"$1\" (see $PROG --help)" ;;
	esac
done

PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}

case $PREFIX in
/*) ;;
*) die "PREFIX must be an absolute path, got \"$PREFIX\"" ;;
esac
PREFIX=${PREFIX%/}
[ -n "$PREFIX" ] || PREFIX=/
if [ -n "$DESTDIR" ] && [ -n "$ROOT" ]; then
	die "DESTDIR (package staging, no users) and --root (whole system image, with users) exclude each other"
fi
if [ "$PURGE" = 1 ] && [ "$UNINSTALL" = 0 ]; then
	die "--purge only goes with --uninstall"
fi
if [ "$UNINSTALL" = 1 ] && { [ -n "$BINARY" ] || [ -n "$URL" ]; }; then
	die "--uninstall takes no --binary or --url"
fi
if [ "$UNINSTALL" = 0 ]; then
	if [ -n "$BINARY" ] && [ -n "$URL" ]; then
		die "give either --binary PATH or --url URL, not both"
	fi
	if [ -z "$BINARY" ] && [ -z "$URL" ]; then
		die "no binary given: use --binary PATH (the file built with deno compile) or --url https://... (see $PROG --help)"
	fi
	if [ -n "$URL" ]; then
		case $URL in
		https://*) ;;
		*) die "--url must be an https:// URL, got \"$URL\"" ;;
		esac
	fi
	if [ -n "$SHA256" ]; then
		case $SHA256 in
		*[!0-9a-fA-F]*) die "--sha256 must be 64 hex digits" ;;
		esac
		[ ${#SHA256} -eq 64 ] || die "--sha256 must be 64 hex digits"
	fi
fi

# The target: R is prepended to every path (DESTDIR or --root; empty for this host).
MODE=host
R=
if [ -n "$DESTDIR" ]; then
	MODE=destdir
	case $DESTDIR in
	/*) ;;
	*) DESTDIR=$(pwd)/$DESTDIR ;;
	esac
	R=${DESTDIR%/}
elif [ -n "$ROOT" ]; then
	MODE=root
	case $ROOT in
	/*) ;;
	*) ROOT=$(pwd)/$ROOT ;;
	esac
	R=${ROOT%/}
	[ -n "$R" ] || die "--root / is this host: leave --root out"
	[ -d "$R" ] || die "--root $ROOT is not a directory"
	for f in passwd group; do
		[ -f "$R/etc/$f" ] || die "--root $ROOT has no etc/$f: is it a system image?"
	done
fi
if [ -n "${UNITDIR:-}" ]; then
	case $UNITDIR in
	/*) ;;
	*) die "UNITDIR must be an absolute path, got \"$UNITDIR\"" ;;
	esac
elif [ "$MODE" = destdir ]; then
	UNITDIR=/usr/lib/systemd/system
else
	UNITDIR=/etc/systemd/system
fi
UNITDIR=${UNITDIR%/}
BIN_PATH=$PREFIX/bin/tibet-nc
[ "$PREFIX" = / ] && BIN_PATH=/bin/tibet-nc

if [ "$DRY_RUN" = 0 ] && [ "$MODE" != destdir ] && [ "$(id -u)" != 0 ]; then
	die "run as root (e.g. sudo $0 ...): it creates system users and writes /etc and $PREFIX; or use --dry-run to see what it would do, or DESTDIR=DIR to stage files for a package"
fi

need() {
	command -v "$1" >/dev/null 2>&1 || die "$1 is required but not installed${2:+ ($2)}"
}

# ---------------------------------------------------------------------------
# Users. In host mode they are looked up with getent (NSS); in --root mode in the
# image's /etc/passwd; in DESTDIR mode they are not created.

user_exists() {
	if [ "$MODE" = host ] && command -v getent >/dev/null 2>&1; then
		getent passwd "$1" >/dev/null 2>&1
	else
		[ -f "$R/etc/passwd" ] && grep -q "^$1:" "$R/etc/passwd"
	fi
}
group_exists() {
	if [ "$MODE" = host ] && command -v getent >/dev/null 2>&1; then
		getent group "$1" >/dev/null 2>&1
	else
		[ -f "$R/etc/group" ] && grep -q "^$1:" "$R/etc/group"
	fi
}
nologin_shell() {
	for s in /usr/sbin/nologin /sbin/nologin; do
		if [ -x "$R$s" ]; then
			echo "$s"
			return
		fi
	done
	echo /bin/false
}
# Numeric "uid:gid" of a user: from NSS on this host, from the image's passwd
# with --root (its users are not this host's).
ids_of() {
	if [ "$MODE" = host ]; then
		echo "$(id -u "$1"):$(id -g "$1")"
	else
		awk -F: -v u="$1" '$1 == u { print $3 ":" $4; found = 1 } END { exit !found }' "$R/etc/passwd" ||
			die "user $1 not found in $R/etc/passwd"
	fi
}

# The useradd/groupadd commands for one user with its own group (also printed
# for a package's postinst).
SHELL_NOLOGIN=$(nologin_shell)
create_user() { # name comment
	name=$1
	comment=$2
	if user_exists "$name"; then
		say "exists: user $name"
		return
	fi
	rootopt=
	[ "$MODE" = root ] && rootopt=--root
	if command -v useradd >/dev/null 2>&1; then
		if group_exists "$name"; then
			say "exists: group $name"
		else
			act groupadd ${rootopt:+"$rootopt"} ${rootopt:+"$R"} --system "$name"
		fi
		act useradd ${rootopt:+"$rootopt"} ${rootopt:+"$R"} --system --gid "$name" \
			--no-create-home --home-dir /nonexistent --shell "$SHELL_NOLOGIN" \
			--comment "$comment" "$name"
	elif command -v adduser >/dev/null 2>&1 && command -v addgroup >/dev/null 2>&1; then
		# BusyBox (Alpine): addgroup -S / adduser -S.
		[ "$MODE" = root ] && die "--root needs useradd (shadow-utils); this host has only BusyBox adduser"
		if group_exists "$name"; then
			say "exists: group $name"
		else
			act addgroup -S "$name"
		fi
		act adduser -S -D -H -h /nonexistent -s "$SHELL_NOLOGIN" -G "$name" -g "$comment" "$name"
	else
		die "neither useradd nor adduser is available to create user $name"
	fi
}
delete_user() { # name
	name=$1
	rootopt=
	[ "$MODE" = root ] && rootopt=--root
	if user_exists "$name"; then
		if command -v userdel >/dev/null 2>&1; then
			act userdel ${rootopt:+"$rootopt"} ${rootopt:+"$R"} "$name"
		elif command -v deluser >/dev/null 2>&1; then
			act deluser "$name"
		else
			die "neither userdel nor deluser is available to remove user $name"
		fi
	else
		say "absent: user $name"
	fi
	# userdel removes the user's own group only under USERGROUPS_ENAB (login.defs).
	group_exists "$name" || return 0
	if [ "$DRY_RUN" = 1 ]; then
		say "would remove group $name if userdel left it"
	elif command -v groupdel >/dev/null 2>&1; then
		act groupdel ${rootopt:+"$rootopt"} ${rootopt:+"$R"} "$name"
	elif command -v delgroup >/dev/null 2>&1; then
		act delgroup "$name"
	fi
}

# ---------------------------------------------------------------------------
# Files.

# Prints the content of a shipped file (next to this script) or its embedded copy.
source_of() { # shipped-name
	if [ -n "$SCRIPT_DIR" ] && [ -f "$SCRIPT_DIR/$1" ]; then
		echo "$SCRIPT_DIR/$1"
	else
		echo embedded
	fi
}
content_of() { # shipped-name
	src=$(source_of "$1")
	if [ "$src" != embedded ]; then
		cat "$src"
	elif [ "$1" = tibet-nc.env.example ]; then
		embedded_env_example
	else
		embedded_unit
	fi
}
unit_content() {
	if [ "$BIN_PATH" = /usr/local/bin/tibet-nc ]; then
		content_of "$UNIT_NAME"
	else
		content_of "$UNIT_NAME" | sed "s#^ExecStart=/usr/local/bin/tibet-nc #ExecStart=$BIN_PATH #"
	fi
}

TMP_DIR=
cleanup() {
	if [ -n "$TMP_DIR" ]; then rm -rf "$TMP_DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Creates dir $3 with mode $1 (octal, 4 digits) and owner $2 (uid:gid, or - to
# leave the owner alone), or corrects an existing one.
mkdir_mode() { # mode owner dir
	d=$R$3
	if [ -d "$d" ]; then
		have=$(stat -c '%a %u:%g' "$d")
		want_mode=${1#0}
		if [ "${have% *}" = "$want_mode" ] && { [ "$2" = - ] || [ "${have#* }" = "$2" ]; }; then
			if [ "$2" = - ]; then say "exists: $d (mode $1)"; else say "exists: $d (mode $1, owner $2)"; fi
			return
		fi
		say "exists: $d (mode ${have% *}, owner ${have#* }): correcting"
	else
		act mkdir -p "$d"
	fi
	act chmod "$1" "$d"
	if [ "$2" != - ]; then act chown "$2" "$d"; fi
}

sha256_of() {
	if command -v sha256sum >/dev/null 2>&1; then
		sha256sum "$1" | cut -d' ' -f1
	elif command -v shasum >/dev/null 2>&1; then
		shasum -a 256 "$1" | cut -d' ' -f1
	else
		die "sha256sum is needed for --sha256"
	fi
}

install_binary() {
	dest=$R$BIN_PATH
	if [ -n "$URL" ]; then
		if [ "$DRY_RUN" = 1 ]; then
			say "would download: $URL"
			src="(download)"
		else
			TMP_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tibet-nc-install.XXXXXX")
			src=$TMP_DIR/tibet-nc
			say "downloading $URL"
			if command -v curl >/dev/null 2>&1; then
				curl -fsSL --proto '=https' --tlsv1.2 -o "$src" "$URL" || die "download of $URL failed (curl)"
			elif command -v wget >/dev/null 2>&1; then
				wget -q --https-only -O "$src" "$URL" || die "download of $URL failed (wget)"
			else
				die "--url needs curl or wget; neither is installed"
			fi
		fi
	else
		src=$BINARY
		[ -e "$src" ] || die "--binary $src: no such file"
		[ -f "$src" ] || die "--binary $src: not a regular file"
	fi
	if [ "$src" != "(download)" ]; then
		[ -s "$src" ] || die "the binary $src is empty"
		sum=$(sha256_of "$src" 2>/dev/null || echo unknown)
		if [ -n "$SHA256" ]; then
			lower=$(printf '%s' "$SHA256" | tr 'A-F' 'a-f')
			[ "$sum" = "$lower" ] || die "SHA-256 of $src is $sum, expected $lower: not installed"
			say "verified: SHA-256 $sum"
		else
			say "binary SHA-256: $sum"
		fi
		if [ -f "$dest" ] && cmp -s "$src" "$dest"; then
			say "exists: $dest (identical)"
			return
		fi
		[ -f "$dest" ] && say "upgrading: $dest"
	fi
	if [ ! -d "$R$PREFIX/bin" ]; then act mkdir -p "$R$PREFIX/bin"; fi
	# Copy next to the target, then rename: a running agent keeps its old file.
	act cp "$src" "$dest.new"
	act chmod 0755 "$dest.new"
	act mv -f "$dest.new" "$dest"
}

install_env_file() {
	dest=$R$ENV_FILE
	if [ -e "$dest" ] || [ -L "$dest" ]; then
		say "exists: $dest (kept as it is; compare with $(source_of tibet-nc.env.example) for new settings)"
		if [ -f "$dest" ] && [ "$(stat -c %a "$dest")" != 600 ]; then
			warn "$dest has mode $(stat -c %a "$dest"); it holds the access token: chmod 0600 it"
		fi
		return
	fi
	if [ ! -d "$R/etc" ]; then act mkdir -p "$R/etc"; fi
	if [ "$DRY_RUN" = 1 ]; then
		say "would write: $dest (mode 0600) from $(source_of tibet-nc.env.example)"
	else
		say "+ write $dest (mode 0600) from $(source_of tibet-nc.env.example)"
		# Created 0600 from the start: umask, then a private temp file renamed in.
		(
			umask 077
			content_of tibet-nc.env.example >"$dest.new"
		)
		chmod 0600 "$dest.new"
		mv "$dest.new" "$dest"
	fi
	if [ "$MODE" != destdir ]; then act chown "$AGENT_IDS" "$dest"; fi
}

install_unit() {
	dest=$R$UNITDIR/$UNIT_NAME
	if [ ! -d "$R$UNITDIR" ]; then act mkdir -p "$R$UNITDIR"; fi
	if [ -f "$dest" ] && unit_content | cmp -s - "$dest"; then
		say "exists: $dest (identical)"
		return
	fi
	[ -f "$dest" ] && say "replacing: $dest (local changes belong in a drop-in: systemctl edit tibet-nc)"
	if [ "$DRY_RUN" = 1 ]; then
		say "would write: $dest (mode 0644) from $(source_of "$UNIT_NAME")"
	else
		say "+ write $dest (mode 0644) from $(source_of "$UNIT_NAME")"
		unit_content >"$dest.new"
		chmod 0644 "$dest.new"
		mv -f "$dest.new" "$dest"
	fi
}

# Symlinks to the default safe set; existing entries are never replaced.
LINKED=
MISSING=
install_bin_dir() {
	mkdir_mode 0755 "$ROOT_IDS" "$BIN_DIR"
	# DESTDIR stages files for another host: look the programs up on this one.
	look=$R
	[ "$MODE" = destdir ] && look=
	already=
	for name in $SAFE_SET; do
		target=
		for d in $SEARCH_DIRS; do
			if [ -f "$look$d/$name" ] && [ -x "$look$d/$name" ]; then
				target=$d/$name
				break
			fi
		done
		link=$R$BIN_DIR/$name
		if [ -z "$target" ]; then
			MISSING="$MISSING $name"
			continue
		fi
		if [ -L "$link" ] || [ -e "$link" ]; then
			current=$(readlink "$link" 2>/dev/null || echo "(not a symlink)")
			if [ "$current" = "$target" ]; then
				already="$already $name"
			else
				say "kept: $link -> $current (not replaced by $target)"
			fi
			continue
		fi
		act ln -s "$target" "$link"
		LINKED="$LINKED $name"
	done
	[ -z "$already" ] || say "exists: links in $R$BIN_DIR:$already"
	if [ -n "$LINKED" ]; then
		if [ "$DRY_RUN" = 1 ]; then
			say "would link into $R$BIN_DIR:$LINKED"
		else
			say "linked into $R$BIN_DIR:$LINKED"
		fi
	fi
	if [ -n "$MISSING" ]; then
		if [ "$MODE" = root ]; then
			say "not in the image, not linked:$MISSING"
		else
			say "not on this host, not linked:$MISSING"
		fi
	fi
	return 0
}

systemd_running() {
	[ "$MODE" = host ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1
}

postinst_commands() {
	cat <<EOF
# --- run as root on the target host (a package's postinst) ---
getent group $AGENT_USER >/dev/null || groupadd --system $AGENT_USER
getent passwd $AGENT_USER >/dev/null || useradd --system --gid $AGENT_USER --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --comment 'tibet-nc agent' $AGENT_USER
getent group $EXEC_USER >/dev/null || groupadd --system $EXEC_USER
getent passwd $EXEC_USER >/dev/null || useradd --system --gid $EXEC_USER --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --comment 'tibet-nc commands' $EXEC_USER
chown $AGENT_USER:$AGENT_USER $ENV_FILE $STATE_DIR
chmod 0600 $ENV_FILE
chmod 0700 $STATE_DIR
systemctl daemon-reload
# --- end ---
EOF
}
postrm_commands() {
	cat <<EOF
# --- run as root on the target host (a package's postrm) ---
systemctl disable --now $UNIT_NAME 2>/dev/null || true
getent passwd $AGENT_USER >/dev/null && userdel $AGENT_USER
getent passwd $EXEC_USER >/dev/null && userdel $EXEC_USER
getent group $AGENT_USER >/dev/null && groupdel $AGENT_USER
getent group $EXEC_USER >/dev/null && groupdel $EXEC_USER
systemctl daemon-reload
# on purge only: rm -rf $ENV_FILE $STATE_DIR
# --- end ---
EOF
}

# ---------------------------------------------------------------------------
do_install() {
	case $MODE in
	host) say "installing tibet-nc on this host" ;;
	root) say "installing tibet-nc into the system image $R" ;;
	destdir) say "staging tibet-nc under DESTDIR=$R (no users, no systemctl)" ;;
	esac
	[ "$DRY_RUN" = 1 ] && say "(dry run: nothing is changed)"
	need cmp
	need sed

	install_binary

	if [ "$MODE" = destdir ]; then
		AGENT_IDS=-
		ROOT_IDS=-
	else
		create_user "$AGENT_USER" "tibet-nc agent"
		create_user "$EXEC_USER" "tibet-nc commands"
		if [ "$DRY_RUN" = 1 ] && ! user_exists "$AGENT_USER"; then
			AGENT_IDS=$AGENT_USER:$AGENT_USER
		else
			AGENT_IDS=$(ids_of "$AGENT_USER")
		fi
		ROOT_IDS=0:0
	fi

	install_env_file
	mkdir_mode 0700 "$AGENT_IDS" "$STATE_DIR"
	install_bin_dir
	install_unit

	# The agent starts every command through setpriv(1), and the stages of a
	# pipeline through setsid(1) with a mkfifo(1) FIFO; it refuses to start
	# without them (util-linux; coreutils).
	look=$R
	[ "$MODE" = destdir ] && look=
	for helper in setpriv setsid mkfifo; do
		if [ ! -x "$look/usr/bin/$helper" ]; then
			warn "/usr/bin/$helper is missing: the agent needs it to run commands (install util-linux and coreutils)"
		fi
	done

	if [ "$MODE" = destdir ]; then
		say "DESTDIR: users were not created and files are owned by $(id -un)."
		postinst_commands
	elif systemd_running; then
		act systemctl daemon-reload
	elif [ "$MODE" = host ]; then
		say "systemd is not running here: skipped 'systemctl daemon-reload'"
	fi
	[ "$DRY_RUN" = 0 ] || say "dry run: nothing was changed."
	say "done. Next: edit $ENV_FILE, run 'tibet-nc login --homeserver URL --user @bot:server', then 'systemctl enable --now tibet-nc'."
}

remove_path() { # path
	if [ -e "$1" ] || [ -L "$1" ]; then
		act rm -f "$1"
	else
		say "absent: $1"
	fi
}

do_uninstall() {
	case $MODE in
	host) say "uninstalling tibet-nc from this host" ;;
	root) say "uninstalling tibet-nc from the system image $R" ;;
	destdir) say "removing staged tibet-nc files under DESTDIR=$R" ;;
	esac
	[ "$DRY_RUN" = 1 ] && say "(dry run: nothing is changed)"
	unit=$R$UNITDIR/$UNIT_NAME
	if systemd_running && [ -f "$unit" ]; then
		act systemctl disable --now "$UNIT_NAME"
	fi
	remove_path "$unit"
	remove_path "$R$BIN_PATH"

	# The bin dir: its symlinks go; regular files an administrator put there are
	# kept unless --purge.
	dir=$R$BIN_DIR
	if [ -d "$dir" ]; then
		kept=
		for entry in "$dir"/* "$dir"/.[!.]*; do
			[ -e "$entry" ] || [ -L "$entry" ] || continue
			if [ -L "$entry" ] || [ "$PURGE" = 1 ]; then
				act rm -rf "$entry"
			else
				kept="$kept $entry"
			fi
		done
		if [ -n "$kept" ]; then
			say "kept (not symlinks; --purge removes them):$kept"
		else
			act rmdir "$dir"
		fi
	else
		say "absent: $dir"
	fi

	if [ "$MODE" = destdir ]; then
		postrm_commands
	else
		delete_user "$AGENT_USER"
		delete_user "$EXEC_USER"
	fi

	if [ "$PURGE" = 1 ]; then
		remove_path "$R$ENV_FILE"
		if [ -d "$R$STATE_DIR" ]; then act rm -rf "$R$STATE_DIR"; else say "absent: $R$STATE_DIR"; fi
	else
		for p in "$R$ENV_FILE" "$R$STATE_DIR"; do
			if [ -e "$p" ]; then say "kept: $p (--purge removes it)"; fi
		done
	fi
	if systemd_running; then act systemctl daemon-reload; fi
	[ "$DRY_RUN" = 0 ] || say "dry run: nothing was changed."
	say "done."
}

# ---------------------------------------------------------------------------
# Embedded copies of the shipped files, used when they are not next to this
# script (e.g. it was downloaded on its own). Keep them identical to the files.

embedded_env_example() {
	cat <<'TIBET_NC_ENV_EXAMPLE_EOF'
# /etc/tibet-nc.env: configuration of the tibet-nc agent (read by tibet-nc.service
# through EnvironmentFile=, or by `tibet-nc run --env-file FILE`).
# Keep this file mode 0600, owner tibet-nc: it holds the access token.
# KEY=value lines, no quotes needed; lines starting with # are comments.
#
# 1. As root, run `tibet-nc login --homeserver URL --user @bot:server`: it asks
#    for the bot account's password and writes MATRIX_HOMESERVER,
#    TIBET_NC_USER_ID, TIBET_NC_ACCESS_TOKEN and TIBET_NC_DEVICE_ID into this file.
# 2. Set TIBET_NC_ALLOWED_USERS to the operators' Matrix ids.
# 3. systemctl enable --now tibet-nc

# --- Required ---------------------------------------------------------------------

# Base URL of the Matrix homeserver (http or https).
MATRIX_HOMESERVER=https://matrix.example.org
# The agent's own Matrix user id (a bot account, not an operator's).
TIBET_NC_USER_ID=@tibet-nc-bot:example.org
# Access token of that account: filled in by `tibet-nc login`, do not type it.
TIBET_NC_ACCESS_TOKEN=
# Operators allowed to send commands, comma-separated Matrix ids. No default.
TIBET_NC_ALLOWED_USERS=@alice:example.org

# --- Optional (the values shown are the defaults) -----------------------------------

# Device id of the access token: filled in by `tibet-nc login` (else asked of the homeserver).
#TIBET_NC_DEVICE_ID=
# Dedicated control room (!id:server); in it, commands need no "$ " prefix.
#TIBET_NC_ROOM=!roomid:example.org
# Name used in replies and TIBET tokens (default: the host name).
#TIBET_NC_HOSTNAME=
# yes: this room holds several agents (a fleet): a command runs only where it is targeted
# (@web-1 $ uptime, @web-* $ df -h, @role=db $ ..., @all $ ...); untargeted ones run nowhere.
#TIBET_NC_FLEET=no
# yes: in a fleet, this agent answers an untargeted command with how to target (set it on one agent per room).
#TIBET_NC_FLEET_HINT=no
# Tags a fleet command can select this agent by: comma-separated key=value (e.g. role=db,dc=ams).
#TIBET_NC_TAGS=
# State dir: crypto store, sync token, audit log, signing key (must be absolute).
#TIBET_NC_STATE_DIR=/var/lib/tibet-nc
# Only executables in this dir can run; install.sh fills it with read-only diagnostics.
#TIBET_NC_BIN_DIR=/usr/local/tibet-nc-bin
# Unprivileged user commands run as; never the agent's own user, never root.
#TIBET_NC_EXEC_USER=tibet-nc-exec
# yes: run commands as the agent's own user (weaker: they could read its secrets).
#TIBET_NC_EXEC_AS_SELF=no
# yes: also accept operator devices their owner did not cross-sign (weaker: for clients without cross-signing).
#TIBET_NC_ALLOW_UNSIGNED_DEVICES=no
# Seconds a command may be old (origin_server_ts vs. this host's clock) and still run.
#TIBET_NC_TIMEBOX=10
# Default per-command timeout, in seconds.
#TIBET_NC_COMMAND_TIMEOUT=60
# Largest timeout an operator may ask for with timeout=N, in seconds.
#TIBET_NC_COMMAND_TIMEOUT_MAX=3600
# Longest a `watch=N` command runs before it stops by itself, in seconds.
#TIBET_NC_WATCH_MAX=600
# Output bytes after which a command is stopped.
#TIBET_NC_MAX_OUTPUT_BYTES=4000000000
# Seconds a command held by the policy's "approve" list waits for another operator's approval.
#TIBET_NC_APPROVAL_TIMEOUT=300
# User approved commands run as (default: TIBET_NC_EXEC_USER): give it only the extra rights
# the privileged lane needs, e.g. a user that may restart services. Never root.
#TIBET_NC_APPROVED_EXEC_USER=tibet-nc-approved
# Directories get and put may use, colon-separated (no default: file transfer is off).
#TIBET_NC_FILE_DIRS=/srv/tibet-nc-files
# Largest file get sends or put writes (default 100 MiB; the homeserver has its own limit).
#TIBET_NC_MAX_FILE_BYTES=104857600
# Complete output kept per command (its output.txt attachment and recording); past it only the start is kept.
#TIBET_NC_FULL_OUTPUT_BYTES=4194304
# age public key (age1..., from `age-keygen -o id.txt` on another machine): each command's
# complete output is kept in recordings/, encrypted to it; read with `tibet-nc audit replay`.
#TIBET_NC_RECORD_PUBKEY=age1...
# Days a recording is kept.
#TIBET_NC_RECORD_KEEP_DAYS=30
# Bytes all recordings may take together; the oldest go first.
#TIBET_NC_RECORD_MAX_BYTES=1073741824
# Commands running at once.
#TIBET_NC_MAX_CONCURRENT=4
# Commands per operator per minute.
#TIBET_NC_RATE_LIMIT=30
# JSON policy file ({"mode": "denylist"|"allowlist", "allow": [...], "deny": [...]}).
#TIBET_NC_POLICY_FILE=/etc/tibet-nc-policy.json
# Passphrase that encrypts the crypto store at rest (or use TIBET_NC_STORE_KEY_FILE).
#TIBET_NC_STORE_PASSPHRASE=
# File holding that passphrase instead; set only one of the two.
#TIBET_NC_STORE_KEY_FILE=/etc/tibet-nc.key
# TIBET token emission endpoint: tokens are POSTed to $BRAIN_API_BASE/api/protocol/send.
#BRAIN_API_BASE=https://brain.example.org
TIBET_NC_ENV_EXAMPLE_EOF
}

embedded_unit() {
	cat <<'TIBET_NC_SERVICE_EOF'
# tibet-nc.service: the tibet-nc agent, which reads commands from an end-to-end-
# encrypted Matrix room and runs them from /usr/local/tibet-nc-bin as the exec
# user tibet-nc-exec. Installed by install.sh. Local changes belong in a drop-in
# (systemctl edit tibet-nc), because install.sh replaces this file on upgrade.
#
# Measure: systemd-analyze security --offline=true tibet-nc.service
#   -> Overall exposure level for tibet-nc.service: 2.0 OK
# (tests/service_test.ts fails when it rises above 2.0). Each setting below that is
# weaker than the strictest value says why the agent needs it.

[Unit]
Description=tibet-nc agent: commands from an end-to-end-encrypted Matrix room
Wants=network-online.target
After=network-online.target
# Never give up: this unit is how the host is reached, so a lockout needs another
# way in. The agent itself waits for an unreachable homeserver; a crash is
# restarted every RestartSec, forever. Configuration errors are not (below).
StartLimitIntervalSec=0

[Service]
Type=exec
ExecStart=/usr/local/bin/tibet-nc run
User=tibet-nc
Group=tibet-nc
# Written by install.sh (0600, owner tibet-nc) and by `tibet-nc login`. systemd
# reads it before dropping privileges.
EnvironmentFile=/etc/tibet-nc.env
Restart=on-failure
RestartSec=5s
# 2 is a usage error, 78 (EX_CONFIG) a configuration error (a bad variable, a
# rejected token, a missing exec user): restarting cannot fix either.
RestartPreventExitStatus=2 78
# SIGTERM goes to the agent alone, which stops syncing, waits for its running
# commands and closes its stores; whatever is left after TimeoutStopSec gets
# SIGKILL (the stores are durable against that).
KillMode=mixed
TimeoutStopSec=30s

# State: /var/lib/tibet-nc, created and chowned by systemd at start, 0700.
StateDirectory=tibet-nc
StateDirectoryMode=0700
UMask=0077

# --- Capabilities -------------------------------------------------------------
# The agent starts every command as the exec user tibet-nc-exec (setuid/setgid in
# the child before exec) and must be able to stop it (kill a process of another
# user): nothing else. Ambient capabilities are how a non-root User= keeps them.
# Ambient capabilities are inherited: they survive setuid() between two non-root
# uids and execve(). The agent must therefore clear them in every command it
# starts (e.g. through setpriv --inh-caps=-all --ambient-caps=-all), or a command
# could setuid(0) or become tibet-nc; tests/service_test.ts checks this.
AmbientCapabilities=CAP_SETUID CAP_SETGID CAP_KILL
CapabilityBoundingSet=CAP_SETUID CAP_SETGID CAP_KILL
# NoNewPrivileges=yes is compatible with this: no_new_privs only stops execve()
# from GRANTING privileges (setuid/setgid bits, file capabilities). Ambient
# capabilities are not granted by execve, they are kept across it (capabilities(7):
# P'(ambient) = P(ambient) for a file without set-id bits or file capabilities),
# and setuid()/setgid() are syscalls checked against the caller's effective set,
# not execve transitions. Checked on Linux 6.x with setpriv --no-new-privs
# --ambient-caps=+setuid,+setgid,+kill: a Deno process then starts a child as
# another uid, as tests/service_test.ts shows.
NoNewPrivileges=yes
# Setuid programs would not gain anything under NoNewPrivileges anyway; no
# file created here may carry set-id bits.
RestrictSUIDSGID=yes
# The exec user must be a real uid of the host (it is in /etc/passwd) and a
# user namespace would map only root and tibet-nc, so setuid() to tibet-nc-exec
# would fail with EINVAL: PrivateUsers stays off.
PrivateUsers=no

# --- File system ----------------------------------------------------------------
# Everything is read-only except the state dir, /tmp (private) and /dev (private).
# The commands are read-only diagnostics (ps, df, journalctl, systemctl status),
# so they work on a read-only system.
ProtectSystem=strict
# Home directories (/home, /root, /run/user) are hidden: no diagnostic of the
# default set needs them, and operators' commands should not read users' files.
# Side effect: `df /home` describes systemd's empty placeholder, not the real
# file system. ProtectHome=read-only in a drop-in shows them (score 2.1).
ProtectHome=yes
PrivateTmp=yes
# A private /dev with the pseudo devices only (null, zero, random, tty, ptmx,
# pts): commands' terminals need ptmx/pts and nothing else. lsblk reads
# /sys, not /dev.
PrivateDevices=yes
DevicePolicy=closed
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
# ps and w list every process of the host: /proc must show other users'
# processes (ProtectProc=invisible would hide them) and the whole of /proc, as
# free reads /proc/meminfo and uptime /proc/loadavg (ProcSubset=pid would hide
# those). A command, holding no capability, still cannot read the agent's
# /proc/<pid>/environ or fds: ptrace access rules guard those, not this setting.
ProtectProc=default
ProcSubset=all
PrivateMounts=yes
RemoveIPC=yes
KeyringMode=private

# --- Network ----------------------------------------------------------------------
# The agent speaks HTTPS to the homeserver (IPv4/IPv6, AF_UNIX for the resolver
# and D-Bus of `systemctl status`). AF_NETLINK is for `ip` and `ss` of the default
# bin dir (rtnetlink, sock_diag). No AF_PACKET, no raw sockets.
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK
# The homeserver's address is known only at run time, so the network is not
# private and no IPAddressAllow= list is possible here; add one in a drop-in if
# the homeserver has fixed addresses.
PrivateNetwork=no

# --- System calls -------------------------------------------------------------
SystemCallArchitectures=native
# @system-service, minus the groups no part of the agent or of a diagnostic needs.
# @privileged stays allowed only because it contains @setuid (setuid, setgid,
# setgroups: starting commands as tibet-nc-exec) and capset (dropping
# capabilities before exec); its other calls need capabilities not granted here.
# @resources is denied: rlimits go through prlimit64, which @default keeps; under
# strace of the agent's runner and the default bin dir the only @resources call
# was ps probing NUMA with set_mempolicy, which copes with EPERM.
SystemCallFilter=@system-service
SystemCallFilter=~@clock @cpu-emulation @debug @module @mount @obsolete @raw-io @reboot @resources @swap
SystemCallErrorNumber=EPERM
RestrictNamespaces=yes
RestrictRealtime=yes
LockPersonality=yes
# Deno runs on V8, whose JIT compiler writes machine code into memory and then
# executes it: MemoryDenyWriteExecute=yes would kill the agent at start.
MemoryDenyWriteExecute=no

[Install]
WantedBy=multi-user.target
TIBET_NC_SERVICE_EOF
}

if [ "$UNINSTALL" = 1 ]; then
	do_uninstall
else
	do_install
fi
