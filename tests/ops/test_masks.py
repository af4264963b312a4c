"""Masks against their definitions written as loops, MaskSpec, and combination."""

import itertools

import jax
import numpy as np
import pytest

from attn_jax.ops import (
    MaskSpec,
    causal_mask,
    combine_masks,
    expand_key_mask,
    padding_mask,
    prefix_lm_mask,
    sliding_window_mask,
    strided_mask,
    token_padding_mask,
)
from attn_jax.ops.masks import pair_padding_mask

SHAPES = [(6, 6, 0), (3, 9, 4), (9, 9, 0), (1, 12, 11)]  # (T, S, q_offset)


def loop_mask(T, S, q_offset, rule):
    return np.array([[rule(q_offset + i, j) for j in range(S)] for i in range(T)])


@pytest.mark.parametrize(("T", "S", "off"), SHAPES)
def test_causal(T, S, off):
    np.testing.assert_array_equal(causal_mask(T, S, off), loop_mask(T, S, off, lambda i, j: j <= i))
    if off == 0 and T == S:
        np.testing.assert_array_equal(causal_mask(T), np.tril(np.ones((T, T), bool)))


@pytest.mark.parametrize(("T", "S", "off"), SHAPES)
@pytest.mark.parametrize(("window", "causal"), [(1, True), (3, True), (2, False), (4, False)])
def test_sliding_window(T, S, off, window, causal):
    if causal:
        rule = lambda i, j: 0 <= i - j < window
    else:
        rule = lambda i, j: abs(i - j) < window
    got = sliding_window_mask(T, S, window, causal=causal, q_offset=off)
    np.testing.assert_array_equal(got, loop_mask(T, S, off, rule))
    assert got.sum(-1).max() <= (window if causal else 2 * window - 1)


@pytest.mark.parametrize(("T", "S", "off"), SHAPES)
@pytest.mark.parametrize(("block", "stride"), [(1, 3), (2, 2), (3, 1), (2, 3)])
def test_strided(T, S, off, block, stride):
    def rule(i, j):
        d = i // block - j // block
        return abs(d) < stride or d % stride == 0

    np.testing.assert_array_equal(
        strided_mask(T, S, block, stride, off), loop_mask(T, S, off, rule)
    )


def test_strided_block1_is_child_et_al():
    """Causal strided_mask with block=1 is A(1) u A(2) of Child et al. (2019, §4.2)."""
    T, l = 16, 4
    got = combine_masks(causal_mask(T), strided_mask(T, T, 1, l))
    for i, j in itertools.product(range(T), range(T)):
        a1 = max(0, i - l) <= j <= i
        a2 = j <= i and (i - j) % l == 0
        assert got[i, j] == (a1 or a2), (i, j)


def test_padding_masks():
    lengths = np.array([3, 0, 5])
    want = np.array([[j < n for j in range(5)] for n in lengths])
    np.testing.assert_array_equal(padding_mask(lengths, 5), want)
    tokens = np.array([[5, 6, 0, 0], [0, 1, 2, 3]])
    np.testing.assert_array_equal(token_padding_mask(tokens), tokens != 0)
    assert expand_key_mask(padding_mask(lengths, 5)).shape == (3, 1, 1, 5)
    q_valid, k_valid = padding_mask(lengths, 4), padding_mask(lengths, 5)
    pair = pair_padding_mask(q_valid, k_valid)
    assert pair.shape == (3, 1, 4, 5)
    np.testing.assert_array_equal(
        pair[:, 0], np.asarray(q_valid)[:, :, None] & np.asarray(k_valid)[:, None, :]
    )


@pytest.mark.parametrize(("T", "S", "off"), SHAPES)
def test_prefix_lm(T, S, off):
    prefixes = np.array([0, 2, 5])
    got = prefix_lm_mask(T, prefixes, S, off)
    assert got.shape == (3, T, S)
    for b, p in enumerate(prefixes):
        want = loop_mask(T, S, off, lambda i, j: j <= i or j < p)  # noqa: B023
        np.testing.assert_array_equal(got[b], want)
        np.testing.assert_array_equal(prefix_lm_mask(T, int(p), S, off), want)
    np.testing.assert_array_equal(prefix_lm_mask(T, 0, S, off), causal_mask(T, S, off))


def test_combine_masks_broadcasts_and_ignores_none():
    assert combine_masks(None, None) is None
    a = causal_mask(4)
    np.testing.assert_array_equal(combine_masks(a, None), a)
    pad = padding_mask(np.array([2, 4]), 4)[:, None, None, :]
    both = combine_masks(a, pad)
    assert both.shape == (2, 1, 4, 4)
    np.testing.assert_array_equal(both, np.asarray(a)[None, None] & np.asarray(pad))


SPECS = [
    MaskSpec(),
    MaskSpec(causal=True),
    MaskSpec(causal=True, window=3),
    MaskSpec(window=2),
    MaskSpec(causal=True, block=2, stride=2),
    MaskSpec(block=3),
    MaskSpec(stride=3),
    MaskSpec(causal=True, prefix_len=3),
    MaskSpec(causal=True, prefix_len=4, window=3),
]


@pytest.mark.parametrize("spec", SPECS, ids=repr)
@pytest.mark.parametrize(("T", "S", "off"), SHAPES)
def test_mask_spec_dense_is_and_of_constraints(spec, T, S, off):
    def rule(i, j):
        ok = True
        if spec.causal:
            ok &= j <= i or (spec.prefix_len is not None and j < spec.prefix_len)
        if spec.window is not None:
            ok &= abs(i - j) < spec.window
        if spec.block is not None or spec.stride is not None:
            block, stride = spec.block or 1, spec.stride
            d = i // block - j // block
            ok &= d == 0 if stride is None else (abs(d) < stride or d % stride == 0)
        return ok

    got = spec.dense(T, S, q_offset=off)
    np.testing.assert_array_equal(got, loop_mask(T, S, off, rule))
    if spec.is_full:
        assert np.asarray(got).all()


def test_traced_offsets_give_the_same_masks():
    """Static inputs build NumPy constants; traced ones (a cache index in jit) jax arrays."""

    def all_masks(offset):
        masks = [spec.dense(3, 9, q_offset=offset) for spec in SPECS]
        masks.append(prefix_lm_mask(3, np.array([2, 4]), 9, offset))
        return masks

    static = all_masks(4)
    assert all(isinstance(m, np.ndarray) for m in static)
    traced = jax.jit(all_masks)(np.int32(4))
    for want, got in zip(static, traced):
        np.testing.assert_array_equal(got, want)


def test_mask_spec_is_static_and_validated():
    spec = MaskSpec(causal=True, window=4)
    assert hash(spec) == hash(MaskSpec(causal=True, window=4))
    assert MaskSpec().is_full
    assert not spec.is_full
    with pytest.raises(AttributeError):
        spec.window = 3
    with pytest.raises(ValueError, match="window"):
        MaskSpec(window=0)
    with pytest.raises(ValueError, match="prefix_len"):
        MaskSpec(prefix_len=-1)
    with pytest.raises(ValueError, match="window"):
        sliding_window_mask(4, 4, 0)
