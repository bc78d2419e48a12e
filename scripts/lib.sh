# Shared by scripts/test and scripts/demo. Sourced, not run.

# Installs the Debian packages given that are not installed yet: one
# `apt-get update` and one `apt-get install`, and nothing when all are there.
ensure_packages() {
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "==> installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
}

# Rust comes from rustup, not apt: Debian's cargo is too old for our crates.
ensure_cargo() {
    if ! command -v cargo >/dev/null 2>&1; then
        echo "error: cargo not found; install Rust with rustup (see README.md, 'Set-up'), then run this again" >&2
        exit 1
    fi
}

# The packages every entry point needs: the real server, the real module
# corpus, an independent XMPP client for the tests and the demo.
RUNTIME_PACKAGES=(prosody prosody-modules python3-slixmpp)

# Prosody 13 for the test matrix: Debian 13's prosody and prosody-modules in
# a chroot made once and reused (about 25 s the first time). It lives outside
# the git tree, in $MODMAN_TRIXIE_ROOT; the stamp file says it is complete,
# so a half-made one (an interrupted run) is made again. No daemon starts in
# it (policy-rc.d). Inside, the chroot's own path is a link to /, so a path
# under it means the same file on both sides (configs, sockets, data).
MODMAN_TRIXIE_ROOT=${MODMAN_TRIXIE_ROOT:-/var/tmp/modman-trixie}
# systemd: the package test verifies modman's unit with the chroot's own
# systemd-analyze. poezio: Debian 13's Poezio (0.15.1), which
# tests/clients.rs drives in tmux against Prosody 13.
TRIXIE_PACKAGES=(prosody prosody-modules lua-unbound lua-dbi-sqlite3 systemd poezio)
ensure_trixie_chroot() {
    local root=$MODMAN_TRIXIE_ROOT
    local stamp="$root/.modman-chroot-complete"
    local want="trixie ${TRIXIE_PACKAGES[*]}"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    # A complete chroot made with fewer packages gets the ones added since,
    # rather than being made again.
    if [ -f "$stamp" ]; then
        echo "==> adding packages to the Prosody 13 chroot in $root"
        $sudo chroot "$root" apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive $sudo chroot "$root" \
            apt-get install -y -q --no-install-recommends "${TRIXIE_PACKAGES[@]}" >/dev/null
        echo "$want" | $sudo tee "$stamp" >/dev/null
        return 0
    fi
    case "$root" in
        /) echo "error: MODMAN_TRIXIE_ROOT cannot be /" >&2; exit 1 ;;
        /*) ;;
        *) echo "error: MODMAN_TRIXIE_ROOT must be an absolute path, not '$root'" >&2; exit 1 ;;
    esac
    # Only a half-made chroot is made again; anything else there is left
    # alone.
    if [ -d "$root" ] && [ -n "$(ls -A "$root")" ] \
        && [ ! -e "$root/debootstrap" ] && [ ! -e "$root/etc/debian_version" ]; then
        echo "error: $root holds something other than a Debian chroot; move it away or set MODMAN_TRIXIE_ROOT to another directory" >&2
        exit 1
    fi
    ensure_packages debootstrap
    echo "==> making the Prosody 13 chroot in $root (once; reused afterwards)"
    local started=$SECONDS
    # Nothing is mounted in it, so removing a half-made one removes only it
    # (rm does not follow the link to /).
    $sudo rm -rf --one-file-system "$root"
    $sudo debootstrap --variant=minbase trixie "$root" >"$root.debootstrap.log" 2>&1 || {
        echo "error: debootstrap trixie into $root failed; see $root.debootstrap.log" >&2
        exit 1
    }
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$root/usr/sbin/policy-rc.d" >/dev/null
    $sudo chmod +x "$root/usr/sbin/policy-rc.d"
    $sudo chroot "$root" apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo chroot "$root" \
        apt-get install -y -q --no-install-recommends "${TRIXIE_PACKAGES[@]}" >/dev/null
    $sudo mkdir -p "$root$(dirname "$root")"
    $sudo ln -sfn / "$root$root"
    echo "$want" | $sudo tee "$stamp" >/dev/null
    echo "    made in $((SECONDS - started)) s"
}

# What the tests add: Profanity and Poezio, real clients, driven in tmux
# (tests/clients.rs); luarocks and the Lua headers, with which
# scripts/luarocks-server packs real rocks (tests/luarocks.rs); groff, which
# renders the package's manual pages in its test (tests/first_hour.rs);
# openssl, which makes the certificate of a test Prosody with TLS. Installed
# here, before any test runs: tests run in parallel, and two of them
# installing at once would fight over apt's lock.
TEST_PACKAGES=(profanity poezio tmux luarocks liblua5.4-dev groff-base openssl)
