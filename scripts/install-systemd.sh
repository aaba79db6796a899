#!/usr/bin/env bash
# Installs pocketpaw-status as a systemd service, from this checkout. Idempotent: run it again after `git pull` to
# update; what is already in place is left alone (the API key in particular is never replaced).
#
#   sudo scripts/install-systemd.sh [--agent-user USER]   install, enable and start
#   scripts/install-systemd.sh --dry-run                  print every action, change nothing
#   scripts/install-systemd.sh --root DIR                 install into an image or staging tree (no running systemd)
#
# What it does:
#   1. the system user and group `pocketpaw-status` (sysusers.d + systemd-sysusers);
#   2. the code: one esbuild bundle built from this checkout into /opt/pocketpaw-status/dist (no node_modules on the
#      target, nothing but Node itself; run `npm ci` here first for the build tools);
#   3. the units into /etc/systemd/system: pocketpaw-status.socket (ingest), pocketpaw-status-http.socket (HTTP),
#      pocketpaw-status.service;
#   4. a random API key in /etc/pocketpaw-status/status-api-key (mode 0600, root), only when there is none; the
#      service reads it through LoadCredential=;
#   5. with --agent-user USER: adds USER to the group `pocketpaw-status`, the socket's group, so the agent may write;
#   6. enables and starts the sockets, and (re)starts the service when something changed.
set -euo pipefail

NAME=pocketpaw-status
PREFIX=/opt/$NAME
CONF_DIR=/etc/$NAME
KEY_FILE=$CONF_DIR/status-api-key
UNIT_DIR=/etc/systemd/system
SYSUSERS_FILE=/etc/sysusers.d/$NAME.conf
# The node the service runs (ExecStart= in pocketpaw-status.service).
NODE=/usr/bin/node
SOCKETS=("$NAME.socket" "$NAME-http.socket")

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The build resolves tsx and esbuild from the checkout's node_modules, wherever the script was started from.
cd "$REPO"
DRY_RUN=0
ROOT=
AGENT_USER=

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

die() {
  printf 'install-systemd: %s\n' "$*" >&2
  exit 1
}

while [[ $# -gt 0 ]]; do
  case $1 in
    --dry-run) DRY_RUN=1 ;;
    --root)
      [[ $# -ge 2 && -n $2 ]] || die "--root needs a directory"
      ROOT=${2%/}
      shift
      ;;
    --root=*) ROOT=${1#--root=} ROOT=${ROOT%/} ;;
    --agent-user)
      [[ $# -ge 2 && -n $2 ]] || die "--agent-user needs a user name"
      AGENT_USER=$2
      shift
      ;;
    --agent-user=*) AGENT_USER=${1#--agent-user=} ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
  shift
done

# --- how actions are taken: each is printed; under --dry-run, only printed ---

run() {
  if ((DRY_RUN)); then
    printf '[dry-run] %s\n' "$*"
  else
    printf '+ %s\n' "$*"
    "$@"
  fi
}

# A step that is not a single command (writing the key), described in words.
step() {
  local description=$1
  shift
  if ((DRY_RUN)); then
    printf '[dry-run] %s\n' "$description"
  else
    printf '+ %s\n' "$description"
    "$@"
  fi
}

note() {
  printf '  %s\n' "$*"
}

# Problems that stop a real run; a dry run reports them and goes on, to show the rest.
blocker() {
  if ((DRY_RUN)); then
    printf '[dry-run] WARNING: a real run would stop here: %s\n' "$*"
  else
    die "$*"
  fi
}

CHANGED=()
STEP=0

section() {
  STEP=$((STEP + 1))
  printf '\n%d. %s\n' "$STEP" "$*"
}

# install_file SOURCE DEST MODE: installs (root-owned) when DEST is missing or differs in content or mode.
install_file() {
  local src=$1 dest=$2 mode=$3
  if [[ -f $src && -f $dest ]] && cmp -s "$src" "$dest" && [[ $(stat -c %a "$dest") == "${mode#0}" ]]; then
    note "unchanged: $dest"
    return 0
  fi
  run install -D -m "$mode" "${OWNER[@]}" "$src" "$dest"
  CHANGED+=("$dest")
}

is_changed() {
  local prefix=$1 path
  for path in "${CHANGED[@]}"; do [[ $path == "$prefix"* ]] && return 0; done
  return 1
}

# --- preflight ---

printf 'Installing %s from %s%s%s\n' "$NAME" "$REPO" "${ROOT:+ into $ROOT}" "$( ((DRY_RUN)) && printf ' (dry run: nothing is changed)')"
if ((!DRY_RUN)) && [[ -z $ROOT && $EUID -ne 0 ]]; then
  die "run as root (sudo $0), or with --dry-run to see what it would do"
fi
# Files are root's. Staging into --root as another user (packaging) leaves ownership to the image build.
OWNER=()
if [[ $EUID -eq 0 ]]; then OWNER=(-o root -g root); fi
if [[ -n $ROOT ]]; then
  [[ $ROOT == /* ]] || die "--root needs an absolute path, not $ROOT"
  [[ -d $ROOT ]] || die "--root $ROOT is not a directory"
  ((DRY_RUN)) || [[ $ROOT != / ]] || die "--root / is the live system: leave --root out"
elif [[ ! -d /run/systemd/system ]]; then
  blocker "systemd is not running on this machine; use --root DIR to install into an image"
fi
[[ -f $REPO/node_modules/esbuild/package.json ]] || blocker "the build tools are missing: run 'npm ci' in $REPO first"
BUILD_NODE=$(command -v node || true)
[[ -n $BUILD_NODE ]] || die "node is not on PATH; install Node.js 20 or newer"
if [[ -z $ROOT ]]; then
  if [[ ! -x $NODE ]]; then
    blocker "the service runs $NODE, which is missing: install Node.js 20 or newer there (Debian/Ubuntu: the nodejs package or NodeSource), or override ExecStart= with 'systemctl edit $NAME.service'"
  elif ! "$NODE" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
    blocker "$NODE is Node.js $("$NODE" --version); the daemon needs 20 or newer"
  fi
fi
R=$ROOT
if [[ -n $AGENT_USER ]]; then
  if [[ -n $ROOT ]]; then
    grep -q "^$AGENT_USER:" "$R/etc/passwd" 2>/dev/null || blocker "user $AGENT_USER does not exist in $ROOT"
  else
    id -u "$AGENT_USER" >/dev/null 2>&1 || blocker "user $AGENT_USER does not exist; give the user the agent runs as"
  fi
fi

# --- 1. the user and group ---

section "system user and group $NAME"
install_file "$REPO/systemd/$NAME.sysusers" "$R$SYSUSERS_FILE" 0644
if [[ -n $ROOT ]]; then
  user_exists() { grep -q "^$NAME:" "$R/etc/passwd" 2>/dev/null && grep -q "^$NAME:" "$R/etc/group" 2>/dev/null; }
else
  user_exists() { getent passwd "$NAME" >/dev/null && getent group "$NAME" >/dev/null; }
fi
if user_exists; then
  note "user and group $NAME exist"
else
  run systemd-sysusers ${ROOT:+--root="$ROOT"} "$R$SYSUSERS_FILE"
fi

# --- 2. the code ---

section "the code: an esbuild bundle in $PREFIX/dist"
BUILD_DIR=
cleanup() { if [[ -n $BUILD_DIR ]]; then rm -rf "$BUILD_DIR"; fi; }
trap cleanup EXIT
if ((DRY_RUN)); then
  BUILD_DIR_SHOWN='<temporary directory>'
  run "$BUILD_NODE" --import tsx "$REPO/scripts/build.ts" --outdir "$BUILD_DIR_SHOWN/dist"
else
  BUILD_DIR=$(mktemp -d)
  BUILD_DIR_SHOWN=$BUILD_DIR
  # The build runs from the checkout (its node_modules) and writes only to the temporary directory.
  run "$BUILD_NODE" --import tsx "$REPO/scripts/build.ts" --outdir "$BUILD_DIR/dist"
fi
# Every file of the build: cli.js loads the others (mqtt.js, fleet.js, prom-client.js, the other commands) on demand.
if ((DRY_RUN)); then
  install_file "$BUILD_DIR_SHOWN/dist/cli.js" "$R$PREFIX/dist/cli.js" 0644
  note "and every other file the build writes next to it (dist/*.js, their source maps, package.json)"
else
  for src in "$BUILD_DIR/dist"/*.js "$BUILD_DIR/dist"/*.js.map "$BUILD_DIR/dist/package.json"; do
    install_file "$src" "$R$PREFIX/dist/${src##*/}" 0644
  done
fi

# --- 3. the units ---

section "systemd units in $UNIT_DIR"
for unit in "${SOCKETS[@]}" "$NAME.service"; do
  install_file "$REPO/systemd/$unit" "$R$UNIT_DIR/$unit" 0644
done

# --- 4. the API key ---

section "the status API key"
if [[ -d $R$CONF_DIR && $(stat -c %a "$R$CONF_DIR") == 700 ]]; then
  note "unchanged: $R$CONF_DIR"
else
  run install -d -m 0700 "${OWNER[@]}" "$R$CONF_DIR"
fi
write_key() {
  # umask first: the file never exists with a wider mode, not even for an instant.
  (umask 077 && head -c 32 /dev/urandom | od -An -tx1 -v | tr -d ' \n' >"$R$KEY_FILE")
}
if [[ -e $R$KEY_FILE ]]; then
  note "kept: $R$KEY_FILE (an existing key is never replaced)"
  if [[ $(stat -c %a "$R$KEY_FILE") != 600 ]]; then run chmod 0600 "$R$KEY_FILE"; fi
else
  step "write a random 256-bit key (64 hex characters) to $R$KEY_FILE, mode 0600" write_key
  CHANGED+=("$R$KEY_FILE")
fi

# --- 5. the agent's user joins the socket's group ---

if [[ -n $AGENT_USER ]]; then
  section "let $AGENT_USER write events (group $NAME)"
  if [[ -n $ROOT ]]; then
    member=$(grep -q "^$NAME:[^:]*:[^:]*:\(.*,\)\{0,1\}$AGENT_USER\(,.*\)\{0,1\}$" "$R/etc/group" 2>/dev/null && echo yes || echo no)
  else
    member=$(id -nG "$AGENT_USER" 2>/dev/null | tr ' ' '\n' | grep -qx "$NAME" && echo yes || echo no)
  fi
  if [[ $member == yes ]]; then
    note "$AGENT_USER is in group $NAME"
  else
    run usermod ${ROOT:+--root "$ROOT"} -a -G "$NAME" "$AGENT_USER"
    note "the agent picks up the new group when it is restarted (or its user logs in again)"
  fi
fi

# --- 6. enable and start ---

if [[ -n $ROOT ]]; then
  section "enable the sockets (they start at boot)"
  run systemctl --root="$ROOT" enable "${SOCKETS[@]}"
else
  section "enable and start the sockets, (re)start the service"
  if ((DRY_RUN)) || is_changed "$UNIT_DIR/"; then run systemctl daemon-reload; fi
  # A socket unit that changed while listening takes effect only when restarted, and only without its service.
  if ((!DRY_RUN)) && is_changed "$UNIT_DIR/$NAME" && systemctl is-active --quiet "$NAME.socket"; then
    if is_changed "$UNIT_DIR/$NAME.socket" || is_changed "$UNIT_DIR/$NAME-http.socket"; then
      run systemctl stop "$NAME.service"
      run systemctl restart "${SOCKETS[@]}"
    fi
  fi
  run systemctl enable --now "${SOCKETS[@]}"
  if ((DRY_RUN)) || ((${#CHANGED[@]} > 0)); then
    run systemctl restart "$NAME.service"
  else
    run systemctl start "$NAME.service"
  fi
fi

printf '\nDone%s.\n' "$( ((DRY_RUN)) && printf ' (dry run: nothing was changed)')"
cat <<EOF
  Status:    curl -H "X-Status-Key: \$(sudo cat $KEY_FILE)" http://127.0.0.1:8780/api/v1/agent/status
  Health:    curl http://127.0.0.1:8780/readyz
  Logs:      journalctl -u $NAME.service
  Ingest:    /run/$NAME/ingest.sock, writable by group $NAME (sudo usermod -aG $NAME AGENT_USER, then restart the agent)
EOF
