-- The lines prosody.cfg.lua needs for modman, with why each is there.
-- Add them to your existing /etc/prosody/prosody.cfg.lua; Prosody 0.12.

-- 1. Where modman installs modules. Prosody searches plugin_paths before its
--    built-in directory; the directory must be writable by the user modman
--    runs as (normally prosody) and readable by Prosody.
plugin_paths = { "/var/lib/prosody/modman" }

-- 2. The admin socket (mod_admin_socket, pulled in by admin_shell), through
--    which modman loads and unloads modules live, without a restart. It
--    appears as <data_path>/prosody.sock, readable by the prosody user only:
--    run modman as that user.
--    mod_version answers modman's version query, which it uses to check
--    each module's Compatibility table against this server.
modules_enabled = {
    -- ... your modules ...
    "admin_shell";
    "version";
}

-- 3. The component modman connects to (XEP-0114). Keep the listener on
--    loopback: modman runs on the same host, and the secret travels in the
--    clear. Generate the secret with: head -c 24 /dev/urandom | base64
component_ports = { 5347 }
component_interface = "127.0.0.1"

Component "modman.example.org"
    component_secret = "change me: the same value as secret in modman.toml"

-- 4. The file modman owns: per-host modules_enabled sections it writes when
--    you enable a module. It must come last, after every VirtualHost and
--    Component, so its sections are read after yours. Create it empty
--    before the first start (touch it, owned by prosody), since a missing
--    Include stops Prosody.
Include "/var/lib/prosody/modman.cfg.lua"
