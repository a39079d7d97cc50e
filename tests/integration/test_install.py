#!/usr/bin/python3
"""test_install.py - `make install` as an operator runs it, into a temporary prefix.

It builds only what it installs (no test programs), bakes in the paths it installs
to (the installed kleepd finds its configuration and profiles there), installs the
docs, examples, catalog and a minimal kleepd.conf, never the test profile, and keeps
an existing kleepd.conf.  That minimal configuration (zero merchants) is valid: kleepd
starts on it and idles, and `kleepctl status` says how to add a first merchant.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemontest as dt  # noqa: E402
import kleeptest as kt  # noqa: E402

c = kt.Checks()


def make_install(prefix, build):
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    dirs = {"UNITDIR": "lib/systemd/system", "SYSUSERSDIR": "lib/sysusers.d",
            "TMPFILESDIR": "lib/tmpfiles.d", "CATALOGDIR": "lib/systemd/catalog",
            "COMPLETIONSDIR": "share/bash-completion/completions"}
    argv = ["make", "-s", "-C", kt.ROOT, "install", f"BUILD={build}", f"PREFIX={prefix}",
            f"SYSCONFDIR={prefix}/etc"] + [f"{k}={prefix}/{v}" for k, v in dirs.items()]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900)


def files_under(top):
    out = set()
    for d, _, names in os.walk(top):
        out.update(os.path.relpath(os.path.join(d, n), top) for n in names)
    return out


def main():
    with kt.TempDir(prefix="kleep-install-") as tmp:
        prefix, build = os.path.join(tmp, "prefix"), os.path.join(tmp, "build")
        r = make_install(prefix, build)
        if not c.check("make install into a fresh prefix", r.returncode == 0, r.stdout + r.stderr):
            return
        c.check("install builds no test program", not os.path.exists(os.path.join(build, "tests")),
                sorted(os.listdir(build)))
        got = files_under(prefix)
        want = {"sbin/kleepd", "bin/kleepctl", "etc/kleep/kleepd.conf",
                "share/kleep/profiles/default.json", "share/man/man8/kleepd.8",
                "share/man/man5/kleepd.conf.5", "share/man/man1/kleepctl.1",
                "share/doc/kleepd/README.md", "share/doc/kleepd/LICENSE",
                "share/doc/kleepd/examples/kleepd.conf",
                "share/doc/kleepd/examples/merchants.d/acme-fr.conf",
                "share/doc/kleepd/examples/kleepd-alerts.yml",
                "share/doc/kleepd/examples/kleepd-alerts.test.yml",
                "lib/systemd/system/kleepd.service", "lib/systemd/system/kleepd.socket",
                "lib/sysusers.d/kleep.conf", "lib/tmpfiles.d/kleep.conf",
                "lib/systemd/catalog/kleepd.catalog", "share/bash-completion/completions/kleepctl"}
        c.check("every file in its place", want <= got, sorted(want - got))
        c.check("the test profile alt.json is not installed",
                not any(f.endswith("alt.json") for f in got), sorted(got))
        c.check("the merchants.d folder exists", os.path.isdir(f"{prefix}/etc/kleep/merchants.d"))
        with open(f"{prefix}/lib/systemd/system/kleepd.service") as f:
            unit = f.read()
        c.check("the unit runs the installed kleepd with the installed configuration",
                f"ExecStart={prefix}/sbin/kleepd -c {prefix}/etc/kleep/kleepd.conf" in unit)
        # Baked paths: no -c reads the installed kleepd.conf; profiles are looked up where
        # they were installed (not /usr/local/share, the default prefix).
        r = subprocess.run([f"{prefix}/sbin/kleepd", "--check-config"], capture_output=True, text=True)
        c.check("kleepd --check-config reads the installed minimal configuration: valid, 0 merchants",
                r.returncode == 0 and f"{prefix}/etc/kleep/kleepd.conf: ok, 0 merchants" in r.stdout + r.stderr,
                r.stdout + r.stderr)
        with open(f"{prefix}/sbin/kleepd", "rb") as f:
            binary = f.read()
        c.check("kleepd looks for profiles where install put them",
                f"{prefix}/share/kleep/profiles".encode() in binary
                and b"/usr/local/share/kleep" not in binary)

        conf = f"{prefix}/etc/kleep/kleepd.conf"
        with open(conf, "a") as f:
            f.write("# the operator's own line\n")
        r = make_install(prefix, build)
        with open(conf) as f:
            kept = "# the operator's own line" in f.read()
        c.check("a second install keeps the operator's kleepd.conf", r.returncode == 0 and kept,
                r.stdout + r.stderr)
        idle_daemon(tmp, conf)


def idle_daemon(tmp, installed_conf):
    """The installed configuration, its folders moved into tmp: kleepd runs idle."""
    state, run = os.path.join(tmp, "state"), os.path.join(tmp, "run")
    with open(installed_conf) as f:
        text = f.read().replace("/var/lib/kleep", state).replace("/run/kleep", run)
    conf = os.path.join(tmp, "kleepd.conf")
    with open(conf, "w") as f:
        f.write(text)
    with dt.Daemon(conf, os.path.join(run, "kleepd.sock")) as d:
        st = d.ctl("status")
        c.check("kleepctl status with no merchant: exit 0, says none and how to add one",
                st.rc == 0 and "No merchants configured" in st.out and "merchants.d/" in st.out
                and "kleepd --check-config" in st.out, st)
        time.sleep(1)
        c.check("kleepd keeps running with zero merchants", d.proc.poll() is None, d.log())


main()
c.finish()
