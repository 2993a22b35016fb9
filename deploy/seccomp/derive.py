#!/usr/bin/env python3
"""Derives artemis-io-uring.json from a Docker (moby) default seccomp profile.

    python3 deploy/seccomp/derive.py path/to/moby/profiles/seccomp/default.json \
        > deploy/seccomp/artemis-io-uring.json

Docker's profile is written in moby's own format: rules that apply only for some capabilities,
architectures or kernels (`includes`, `excludes`, `minKernel`) and an `archMap`. Docker reads that
format; containerd (Kubernetes' `Localhost` profiles) reads a profile as the OCI runtime spec's
`LinuxSeccomp` and ignores those fields, so a rule meant for CAP_SYS_ADMIN only would apply to
every container. This script resolves them once, for a container with Docker's default
capabilities on x86-64 or arm64 and a kernel of at least 5.11 (the server's own floor), and writes
a plain OCI profile that Docker, containerd and CRI-O all read the same way.

Then it takes io_uring_setup, io_uring_enter and io_uring_register out of the general allow rule
(Docker 20.10 still allowed them; Docker 25 and containerd 2.0 removed them) and allows them in a
rule of their own, so that the one difference from the runtime default is visible in the file.
"""

import json
import sys

IO_URING = ["io_uring_enter", "io_uring_register", "io_uring_setup"]

# Docker's default capabilities (a container started without --cap-add or --cap-drop).
CAPS = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

# Go architecture names of the two targets, as moby's rules name them, with their
# 32-bit companions that the archMap lists under them.
ARCHES = {"amd64", "x86", "x32", "arm64", "arm"}
SCMP_ARCHES = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32",
               "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]

KERNEL = (5, 11)


def applies(rule):
    inc = rule.get("includes") or {}
    exc = rule.get("excludes") or {}
    if inc.get("arches") and not ARCHES & set(inc["arches"]):
        return False
    if inc.get("caps") and not set(inc["caps"]) <= CAPS:
        return False
    if inc.get("minKernel"):
        major, minor = (int(x) for x in inc["minKernel"].split(".")[:2])
        if (major, minor) > KERNEL:
            return False
    if exc.get("arches") and ARCHES <= set(exc["arches"]):
        return False
    if exc.get("caps") and set(exc["caps"]) & CAPS:
        return False
    return True


def main():
    with open(sys.argv[1]) as f:
        moby = json.load(f)
    allowed = set()
    rules = []
    for rule in moby["syscalls"]:
        if not applies(rule):
            continue
        args = rule.get("args") or []
        if rule["action"] == "SCMP_ACT_ALLOW" and not args:
            allowed.update(rule["names"])
            continue
        out = {"names": rule["names"], "action": rule["action"]}
        if rule.get("errnoRet") is not None:
            out["errnoRet"] = rule["errnoRet"]
        if args:
            out["args"] = [
                {k: a[k] for k in ("index", "value", "valueTwo", "op") if k in a}
                for a in args
            ]
        rules.append(out)
    allowed -= set(IO_URING)
    profile = {
        "defaultAction": moby["defaultAction"],
        "defaultErrnoRet": moby.get("defaultErrnoRet", 1),
        "architectures": SCMP_ARCHES,
        "syscalls": [{"names": sorted(allowed), "action": "SCMP_ACT_ALLOW"}]
        + rules
        + [{"names": IO_URING, "action": "SCMP_ACT_ALLOW"}],
    }
    json.dump(profile, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
