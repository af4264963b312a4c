"""benchmarks/attention.py's arithmetic (no timing): the causal FLOP count and the ratio wording."""

import os

import numpy as np

from attn_jax import configs
from attn_jax.ops.masks import MaskSpec

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_causal_flops_count_the_pairs_of_the_mask_and_ratios_read_the_right_way(capsys):
    bench = configs.import_file(os.path.join(REPO, "benchmarks/attention.py"))
    for T in (1, 7, 64):
        pairs = int(np.asarray(MaskSpec(causal=True).dense(T, T)).sum())
        # fwd q.k and p.v, bwd dv, dp, dq, dk: 6 products of 2 H FLOPs per pair per head
        assert bench.causal_flops(T) == 12 * bench.B * bench.N * bench.H * pairs
    rows = [
        dict(kernel="blockwise", T=4096, status="ok", time_s=0.5),
        dict(kernel="torch_sdpa", T=4096, status="ok", time_s=0.25),
        dict(kernel="blockwise", T=8192, status="ok", time_s=1.0),
        dict(kernel="torch_sdpa", T=8192, status="ok", time_s=3.0),
        dict(kernel="blockwise", T=16384, status="ok", time_s=1.0),  # no baseline: no line
    ]
    bench._print_ratios(rows, "blockwise", "torch_sdpa")
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "blockwise vs torch_sdpa at T=4096: 2.00x slower",
        "blockwise vs torch_sdpa at T=8192: 3.00x faster",
    ]
