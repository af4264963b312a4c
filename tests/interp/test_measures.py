"""Head statistics on constructed patterns return their known values; rollout and induction too."""

import numpy as np
import pytest

from attn_jax.interp import induction, measures, rollout

T = 6


def pattern(rows_TS, B=2):
    """weights_BNTS with one head per given [T, S] pattern."""
    return np.broadcast_to(np.stack(rows_TS)[None], (B, len(rows_TS)) + rows_TS[0].shape).copy()


def identity():
    return np.eye(T)


def previous():
    w = np.zeros((T, T))
    w[0, 0] = 1.0  # the first query has no previous token
    w[np.arange(1, T), np.arange(T - 1)] = 1.0
    return w


def uniform():
    return np.full((T, T), 1.0 / T)


def first():
    w = np.zeros((T, T))
    w[:, 0] = 1.0
    return w


def causal_uniform():
    w = np.tril(np.ones((T, T)))
    return w / w.sum(-1, keepdims=True)


def test_entropy_identity_zero_uniform_log_t():
    w = pattern([identity(), previous(), uniform(), first()])
    np.testing.assert_allclose(measures.entropy(w), [0.0, 0.0, np.log(T), 0.0], atol=1e-12)
    np.testing.assert_allclose(measures.normalized_entropy(w)[2], 1.0)
    causal = pattern([causal_uniform()])
    np.testing.assert_allclose(measures.normalized_entropy(causal, causal=True), [1.0])


def test_positional_and_sink_scores():
    w = pattern([identity(), previous(), uniform(), first()])
    # rows without the key (t - 1 < 0) are left out; previous()'s row 0 sits on the diagonal
    np.testing.assert_allclose(measures.diagonal_score(w), [1, 1 / T, 1 / T, 1 / T])
    np.testing.assert_allclose(measures.previous_token_score(w), [0, 1, 1 / T, 1 / (T - 1)])
    np.testing.assert_allclose(measures.first_token_score(w), [1 / T, 2 / T, 1 / T, 1])
    np.testing.assert_allclose(measures.offset_score(w, -1), [0, 0, 1 / T, 0])


def test_mean_distance_in_positions():
    w = pattern([identity(), previous(), uniform()])
    expected_uniform = np.abs(np.arange(T)[:, None] - np.arange(T)[None]).mean()
    np.testing.assert_allclose(
        measures.mean_attention_distance(w), [0.0, (T - 1) / T, expected_uniform]
    )


def test_mean_distance_vit_pixels_skips_cls():
    grid, p = 3, 4
    coords, valid = measures.patch_coordinates(grid, p, cls_token=True)
    Tn = grid * grid + 1
    w = np.zeros((1, 1, Tn, Tn))
    w[0, 0, :, 0] = 0.5  # half on [CLS]: excluded from the distance, rows renormalized
    for t in range(1, Tn):
        r, c = divmod(t - 1, grid)
        w[0, 0, t, 1 + r * grid + (c + 1) % grid] += 0.5  # the patch to the right (wrapping)
    valid_B = valid[None]
    got = measures.mean_attention_distance(
        w, coords, coords, q_valid_BT=valid_B, k_valid_BS=valid_B
    )
    # per row: p (right neighbour), or (grid - 1) p when wrapping to the first column
    expected = np.mean([p if c < grid - 1 else (grid - 1) * p for c in range(grid)])
    np.testing.assert_allclose(got, [expected])


def test_padding_masks_exclude_rows_and_keys():
    w = pattern([previous()], B=1)
    q_valid = np.ones((1, T), bool)
    q_valid[0, 3:] = False
    # break the padded rows: they must not count
    w[0, 0, 3:] = 0.0
    w[0, 0, 3:, -1] = 1.0
    np.testing.assert_allclose(measures.previous_token_score(w, q_valid_BT=q_valid), [1.0])
    np.testing.assert_allclose(measures.entropy(w, q_valid_BT=q_valid), [0.0])
    with pytest.raises(ValueError, match="q_valid_BT"):
        measures.entropy(w, q_valid_BT=np.ones((1, T + 1), bool))


def test_delimiter_score():
    tokens = np.array([[5, 1, 9, 1, 7, 7]])
    w = np.zeros((1, 1, T, T))
    w[0, 0, :, 1] = 0.25
    w[0, 0, :, 3] = 0.5
    w[0, 0, :, 4] = 0.25
    np.testing.assert_allclose(measures.delimiter_score(w, tokens, [1]), [0.75])


def test_classify_heads():
    reverse = np.eye(T)[::-1]  # sharp, but on no fixed offset and not the first token
    w = pattern([identity(), previous(), uniform(), first(), reverse])
    types = measures.classify_heads(measures.head_stats(w))
    assert [t["type"] for t in types] == ["positional", "positional", "broad", "sink", "content"]
    assert [t["detail"] for t in types[:2]] == ["diagonal", "previous_token"]


def test_rollout_two_layers_hand_computed():
    # layer 1, two heads: all to key 0 / all to key 1 -> mean 0.5 everywhere;
    # A1 = 0.5 (mean + I) = [[.75, .25], [.25, .75]]
    l1 = np.array([[[[1, 0], [1, 0]], [[0, 1], [0, 1]]]], float)
    # layer 2, one head: all to key 0 -> A2 = [[1, 0], [.5, .5]]
    l2 = np.array([[[[1, 0], [1, 0]]]], float)
    # R = A2 @ A1 = [[.75, .25], [.5, .5]]  (A1 @ A2 would be [[.875, .125], [.625, .375]])
    np.testing.assert_allclose(rollout.attention_rollout([l1, l2])[0], [[0.75, 0.25], [0.5, 0.5]])
    r1, r2 = rollout.attention_rollout([l1, l2], all_layers=True)
    np.testing.assert_allclose(r1[0], [[0.75, 0.25], [0.25, 0.75]])
    # without the residual: the plain product M2 @ M1 of the head means
    np.testing.assert_allclose(
        rollout.attention_rollout([l1, l2], residual=False)[0], [[0.5, 0.5], [0.5, 0.5]]
    )


def test_induction_score_perfect_and_uniform():
    n, start = 5, 1
    Tn = start + 2 * n
    perfect = np.zeros((2, 1, Tn, Tn))
    for i in range(start + n, Tn):
        perfect[:, 0, i, i - n + 1] = 1.0
    perfect[:, 0, : start + n, 0] = 1.0
    flat = np.full((2, 1, Tn, Tn), 1.0 / Tn)
    np.testing.assert_allclose(induction.induction_score(perfect, n, start), [1.0])
    np.testing.assert_allclose(induction.induction_score(flat, n, start), [1.0 / Tn])
    tokens = induction.repeated_random_tokens(3, n, 50, seed=1, prefix=(7,))
    assert tokens.shape == (3, Tn)
    assert (tokens[:, 0] == 7).all()
    np.testing.assert_array_equal(tokens[:, 1 : 1 + n], tokens[:, 1 + n :])
