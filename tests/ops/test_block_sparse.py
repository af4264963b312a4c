"""Block-sparse tables: they cover every allowed pair and skip most blocks at long T."""

import numpy as np
import pytest

from attn_jax.ops.block_sparse import block_tables, visible_blocks
from attn_jax.ops.masks import MaskSpec


@pytest.mark.parametrize(
    ("spec", "q_offset"),
    [
        (MaskSpec(block=4, stride=3), 0),
        (MaskSpec(causal=True, block=4, stride=3), 5),
        (MaskSpec(causal=True, block=8), 0),
        (MaskSpec(stride=5, window=20), 3),
        (MaskSpec(causal=True, block=3, stride=2, prefix_len=7), 0),
    ],
)
def test_visible_blocks_cover_the_dense_mask(spec, q_offset):
    T, S, bq, bk = 50, 61, 8, 16
    dense = np.asarray(spec.dense(T, S, q_offset))
    vis = visible_blocks(spec, T, S, q_offset, bq, bk)
    padded = np.zeros((vis.shape[0] * bq, vis.shape[1] * bk), bool)
    padded[:T, :S] = dense
    touched = padded.reshape(vis.shape[0], bq, vis.shape[1], bk).any(axis=(1, 3))
    assert np.all(vis[touched]), "a block with an allowed pair would be skipped"
    kv_idx, kv_count, q_idx, q_count = block_tables(vis)
    for r in range(vis.shape[0]):
        assert sorted(kv_idx[r, : kv_count[r]]) == list(np.flatnonzero(vis[r]))
    assert q_count.sum() == kv_count.sum() == vis.sum()


def test_strided_pattern_is_sparse_at_long_T():
    T, b, s = 16384, 128, 8
    vis = visible_blocks(MaskSpec(causal=True, block=b, stride=s), T, T, 0, b, b)
    nb = T // b
    causal_blocks = nb * (nb + 1) // 2
    # about s local + nb / s strided blocks per row, against nb / 2 for the causal mask
    assert vis.sum() < 0.25 * causal_blocks
    assert vis.sum(1).max() <= s + nb // s + 1
