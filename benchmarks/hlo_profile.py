"""Where a compiled step's time goes: per-instruction times from a jax.profiler
trace, grouped by what each HLO instruction computes (benchmarks/train_lm.py --profile)."""

from __future__ import annotations

import os

# The first group whose needle is in an instruction's HLO (a fusion's included)
# wins: an exp fused into a dot's fusion counts as matmul.
PROFILE_GROUPS = (
    ("matmul (dot / fused dot)", ("dot(", "dot_general", "convolution(", "__onednn$matmul")),
    ("softmax / exp", ("exponential(",)),
    ("reductions (LN stats, softmax sums, loss)", ("reduce(", "reduce-window(")),
    ("copies / transposes", ("copy(", "transpose(")),
    (
        "gather / scatter (embed)",
        ("gather(", "scatter(", "dynamic-slice(", "dynamic-update-slice("),
    ),
    ("other elementwise (optimizer, gelu, rope...)", ("",)),
)


def _hlo_bodies(hlo_text: str) -> dict[str, str]:
    """instruction name -> the text of what it computes (a fusion's called computation)."""
    import re

    computations: dict[str, str] = {}
    current, lines = None, []
    for line in hlo_text.splitlines():
        m = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{\s*$", line)
        if m:
            current, lines = m.group(1), []
            continue
        if line.startswith("}") and current is not None:
            computations[current] = "\n".join(lines)
            current = None
            continue
        if current is not None:
            lines.append(line)
    bodies = {}
    for body in computations.values():
        for line in body.splitlines():
            m = re.match(r"\s*(?:ROOT )?%?([\w.\-]+) = (.*)$", line)
            if not m:
                continue
            name, rest = m.groups()
            called = re.search(r"calls=%?([\w.\-]+)", rest)
            bodies[name] = rest + ("\n" + computations.get(called.group(1), "") if called else "")
    return bodies


def _group(text: str) -> str:
    for label, needles in PROFILE_GROUPS:
        if any(n in text for n in needles):
            return label
    return PROFILE_GROUPS[-1][0]


def profile_breakdown(compiled, state, batch, steps: int = 3):
    """(state, [(group, seconds per step, share)], top [(instruction, s/step, group)])."""
    import tempfile

    import jax
    from jax._src.lib import _profile_data

    bodies = _hlo_bodies(compiled.as_text())
    with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp):
            for _ in range(steps):
                state, metrics = compiled(state, batch)
            jax.block_until_ready(metrics)
        paths = [
            os.path.join(d, f) for d, _, fs in os.walk(tmp) for f in fs if f.endswith(".xplane.pb")
        ]
        data = _profile_data.ProfileData.from_file(paths[0])
    per_op: dict[str, float] = {}
    for plane in data.planes:
        for line in plane.lines:
            for event in line.events:
                if event.name in bodies:
                    per_op[event.name] = per_op.get(event.name, 0.0) + event.duration_ns * 1e-9
    total = sum(per_op.values()) or 1.0
    groups: dict[str, float] = {}
    for name, seconds in per_op.items():
        group = _group(bodies[name])
        groups[group] = groups.get(group, 0.0) + seconds
    rows = sorted(groups.items(), key=lambda kv: -kv[1])
    rows = [(g, t / steps, t / total) for g, t in rows]
    top = sorted(per_op.items(), key=lambda kv: -kv[1])[:8]
    return state, rows, [(n, t / steps, _group(bodies[n])) for n, t in top]


def print_profile(rows, top, step_seconds: float) -> None:
    busy = sum(r[1] for r in rows)
    print(
        f"profile: {busy * 1e3:.0f} ms of XLA ops per step (thread-seconds over all cores; "
        f"the step takes {step_seconds * 1e3:.0f} ms wall)",
        flush=True,
    )
    for group, seconds, share in rows:
        print(f"    {share:6.1%}  {seconds * 1e3:8.1f} ms  {group}", flush=True)
    print("  slowest instructions:", flush=True)
    for name, seconds, group in top:
        print(f"    {seconds * 1e3:8.1f} ms  {name}  [{group}]", flush=True)
