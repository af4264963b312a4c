"""Process-level runtime settings that must be in place before JAX starts.

XLA:CPU allocates large temporaries every step. With glibc's default malloc they
go back to the operating system after use and are page-faulted in again on the
next step (about 1.3 s of system time per 4 s step at the reference LM shape;
shared/PERFORMANCE.md). The tunables below keep freed memory in the process.
glibc reads them only at process start, so a running process must re-execute
itself to apply them; `mallopt` through ctypes after start does not reproduce it.
"""

from __future__ import annotations

import os
import sys

MALLOC_TUNABLES = (
    "glibc.malloc.mmap_max=0"
    ":glibc.malloc.trim_threshold=68719476736"
    ":glibc.malloc.arena_max=1"
    ":glibc.malloc.top_pad=1073741824"
)

# Set in the child so a misbehaving environment cannot make us re-exec forever.
_REEXEC_MARK = "ATTN_JAX_MALLOC_REEXEC"


def malloc_tunables_active() -> bool:
    """True when this process was started with the XLA:CPU malloc tunables."""
    return "glibc.malloc.mmap_max=0" in os.environ.get("GLIBC_TUNABLES", "")


def ensure_malloc_tunables(argv: list[str] | None = None) -> None:
    """Re-executes the current Python process with `GLIBC_TUNABLES` set, if absent.

    Call it first thing in an entry point (`if __name__ == "__main__":`), before
    any heavy work; it returns normally when the variable is already set, when
    the platform is not glibc Linux, or when `ATTN_JAX_NO_REEXEC=1` asks it not
    to. Otherwise it never returns: `os.execve` replaces the process, keeping
    its arguments (`sys.orig_argv`, so `python -m pkg.mod` works too).

    Args:
      argv: the command line to re-execute; defaults to `sys.orig_argv`.
    """
    if malloc_tunables_active() or os.environ.get(_REEXEC_MARK):
        return
    if os.environ.get("ATTN_JAX_NO_REEXEC") == "1" or not sys.platform.startswith("linux"):
        return
    if "glibc" not in (os.confstr("CS_GNU_LIBC_VERSION") or "").lower():
        return
    env = dict(os.environ)
    prev = env.get("GLIBC_TUNABLES")
    env["GLIBC_TUNABLES"] = f"{prev}:{MALLOC_TUNABLES}" if prev else MALLOC_TUNABLES
    env[_REEXEC_MARK] = "1"
    args = list(argv if argv is not None else sys.orig_argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *args[1:]], env)
