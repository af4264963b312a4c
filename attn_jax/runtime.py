"""Process-level runtime settings that must be in place before JAX starts.

XLA:CPU allocates large temporaries every step. With glibc's default malloc they
go back to the operating system after use and are page-faulted in again on the
next step (about 1.3 s of system time per 4 s step at the reference LM shape;
shared/PERFORMANCE.md). The tunables below keep freed memory in the process.
glibc reads them only at process start, so a running process must re-execute
itself to apply them; `mallopt` through ctypes after start does not reproduce it.
"""

from __future__ import annotations

import contextlib
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


CACHE_MAX_BYTES_ENV = "ATTN_JAX_COMPILATION_CACHE_MAX_BYTES"
DEFAULT_CACHE_MAX_BYTES = 2**30


def enable_compilation_cache(path: str) -> bool:
    """Turns on JAX's persistent compilation cache at `path` for this process.

    A sweep's trials of one shape compile the same programs; with the cache the
    second trial (in any process, on any later day) loads them from `path`
    instead of compiling. Every program is written, however fast it compiled
    (`jax_persistent_cache_min_compile_time_secs` 0: the demo's small models
    compile in under a second each, which is still most of a short trial).
    Hits and misses are counted by JAX's own monitoring events
    (`/jax/compilation_cache/cache_hits`, `.../cache_misses`).

    The cache is bounded: JAX evicts the least recently used programs once it
    holds more than `ATTN_JAX_COMPILATION_CACHE_MAX_BYTES` (default 1 GiB; -1 =
    unbounded), so a sweep directory reused for months does not fill the disk.

    Set `ATTN_JAX_COMPILATION_CACHE=0` to leave it off. Returns whether it is on.
    The cache is trusted code: keep `path` somewhere only you can write.
    """
    if os.environ.get("ATTN_JAX_COMPILATION_CACHE", "1") == "0":
        return False
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    path = os.path.abspath(path)
    os.makedirs(path, exist_ok=True)
    if jax.config.jax_compilation_cache_dir != path:
        compilation_cache.set_cache_dir(path)
        # A process that already compiled with another (or no) cache dir keeps
        # its first choice until the cache is reset.
        compilation_cache.reset_cache()
    max_bytes = int(os.environ.get(CACHE_MAX_BYTES_ENV, DEFAULT_CACHE_MAX_BYTES))
    if max_bytes == 0 or max_bytes < -1:
        raise ValueError(f"{CACHE_MAX_BYTES_ENV} must be > 0 or -1 (unbounded), got {max_bytes}.")
    if max_bytes > 0:
        _stamp_unaged_entries(path)
    # Read when the cache is first used (the first compile after reset_cache).
    jax.config.update("jax_compilation_cache_max_size", max_bytes)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return True


def _stamp_unaged_entries(path: str) -> None:
    """Gives every cached program without one an access-time file (its mtime).

    JAX's evicting cache keeps `<key>-atime` beside each `<key>-cache` and fails
    every write ("Error writing persistent compilation cache entry") in a
    directory filled while eviction was off, where those files are missing.
    """
    import filelock

    with filelock.FileLock(os.path.join(path, ".lockfile")):  # the lock JAX's cache takes
        for name in os.listdir(path):
            if not name.endswith("-cache"):
                continue
            atime = os.path.join(path, name[: -len("-cache")] + "-atime")
            if not os.path.exists(atime):
                stamp = os.stat(os.path.join(path, name)).st_mtime_ns
                with open(atime, "wb") as f:
                    f.write(stamp.to_bytes(8, "little"))


_CACHE_EVENTS = {
    "/jax/compilation_cache/compile_requests_use_cache": "requests",
    "/jax/compilation_cache/cache_hits": "hits",
    "/jax/compilation_cache/cache_misses": "writes",
}
_COMPILE_SECONDS = "/jax/core/compile/backend_compile_duration"


@contextlib.contextmanager
def compile_counters():
    """Counts XLA compiles and persistent-cache hits inside the block, from JAX's own events.

    Yields a dict that fills in as the block runs: `requests` (programs looked
    up in the persistent cache), `hits` (loaded from it instead of compiled),
    `writes` (compiled and written to it) and `compile_seconds` (wall time in
    XLA's compile-or-load, hits included). Without a cache dir only
    `compile_seconds` moves.
    """
    import jax.monitoring as monitoring

    counts = {"requests": 0, "hits": 0, "writes": 0, "compile_seconds": 0.0}

    def on_event(event, **kwargs):
        del kwargs
        if event in _CACHE_EVENTS:
            counts[_CACHE_EVENTS[event]] += 1

    def on_duration(event, duration, **kwargs):
        del kwargs
        if event == _COMPILE_SECONDS:
            counts["compile_seconds"] += float(duration)

    monitoring.register_event_listener(on_event)
    monitoring.register_event_duration_secs_listener(on_duration)
    try:
        yield counts
    finally:
        monitoring.unregister_event_listener(on_event)
        monitoring.unregister_event_duration_listener(on_duration)
