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
# What the tests add: Profanity, a real client, driven in tmux
# (tests/clients.rs).
TEST_PACKAGES=(profanity tmux)
