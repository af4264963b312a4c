"""Greedy and beam decoding: cache = teacher forcing, beam 1 = greedy, wide beam = exhaustive."""

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from attn_jax.data.pairs import BOS, EOS, PAD
from attn_jax.models import decode
from attn_jax.models.seq2seq import EncoderDecoder, Seq2SeqConfig

TINY = dict(vocab_size=16, d_model=32, enc_layers=2, dec_layers=2, num_heads=4, d_ff=64, max_len=32)


def _model(**overrides):
    return EncoderDecoder(Seq2SeqConfig(**{**TINY, **overrides}), rngs=nnx.Rngs(0))


def _source(B=3, S=7):
    src = jax.random.randint(jax.random.key(1), (B, S), 3, 16, jnp.int32)
    return src, jnp.array([S, 4, 1][:B], jnp.int32)


@pytest.mark.parametrize("position", ["relative", "learned", "rope"])
def test_cached_decoding_equals_teacher_forcing(position):
    """Logits step by step through the self- and cross-caches == one full forward."""
    model = _model(position=position, num_kv_heads=2, norm="pre")
    src, src_len = _source()
    tgt = jax.random.randint(jax.random.key(2), (3, 9), 3, 16, jnp.int32)
    graphdef, state = nnx.split(model)

    @jax.jit
    def both(state):
        m = nnx.merge(graphdef, state)
        full = m(src, src_len, tgt)
        cross = m.init_cross_caches(m.encode(src, src_len))
        first, cache = m.decode(
            tgt[:, :2], None, src_len, cache=m.init_cache(3, 16), cross_cache=cross
        )

        def step(cache, token_B):
            logits_B1V, cache = m.decode(
                token_B[:, None], None, src_len, cache=cache, cross_cache=cross
            )
            return cache, logits_B1V[:, 0]

        _, rest = jax.lax.scan(step, cache, tgt[:, 2:].T)
        return full, jnp.concatenate([first, rest.transpose(1, 0, 2)], axis=1)

    full, cached = both(state)
    np.testing.assert_allclose(cached, full, atol=1e-5, rtol=1e-5)


def test_greedy_is_the_argmax_of_teacher_forcing_and_beam1_equals_it():
    model = _model(position="sinusoidal")
    src, src_len = _source()
    out = np.asarray(decode.greedy(model, src, src_len, max_len=10))
    assert out.shape == (3, 10)
    tgt_in = np.concatenate([np.full((3, 1), BOS), out[:, :-1]], axis=1)
    logits = nnx.jit(lambda m, t: m(src, src_len, t))(model, jnp.asarray(tgt_in))
    want = np.asarray(jnp.argmax(logits, -1))
    for b in range(3):  # up to and including the first EOS; PAD after it
        row = list(out[b])
        end = row.index(EOS) + 1 if EOS in row else len(row)
        np.testing.assert_array_equal(out[b, :end], want[b, :end])
        assert np.all(out[b, end:] == PAD)
    beam = decode.beam_search(model, src, src_len, beam_size=1, max_len=10, length_penalty=0.0)
    np.testing.assert_array_equal(np.asarray(beam), out)


# A fake decoder with known sequence probabilities: the next-token logits depend on
# the step and the last two tokens (the previous one lives in the "cache", so beam
# search must reorder caches correctly), plus `eos_boost` x the first source id on EOS.
@dataclasses.dataclass(frozen=True)
class FakeConfig:
    vocab_size: int = 5


class FakeDecoder(nnx.Module):
    def __init__(self, table_TVVV, eos_boost=0.0):
        self.config = FakeConfig(table_TVVV.shape[-1])
        self.table = nnx.Param(jnp.asarray(table_TVVV, jnp.float32))
        self.eos_boost = float(eos_boost)

    def encode(self, src_BS, src_len_B):
        return src_BS[..., None].astype(jnp.float32)

    def init_cross_caches(self, enc_BSD):
        return [enc_BSD]

    def init_cache(self, batch_size, max_len):
        return [(jnp.full((batch_size,), BOS, jnp.int32), jnp.zeros((), jnp.int32))]

    def decode(self, token_B1, enc, src_len_B, *, cache, cross_cache):
        prev_B, index = cache[0]
        logits_BV = self.table[...][index, prev_B, token_B1[:, 0]]
        boost_B = self.eos_boost * cross_cache[0][:, 0, 0]
        logits_BV = logits_BV.at[:, EOS].add(boost_B)
        return logits_BV[:, None], [(token_B1[:, 0], index + 1)]


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _exhaustive(table, max_len, alpha):
    """Every finished sequence (ends in EOS, <= max_len) with its GNMT score, best first."""
    logp = _log_softmax(np.asarray(table, np.float64))
    V = table.shape[-1]
    out = []
    for k in range(1, max_len + 1):
        for body in itertools.product([v for v in range(V) if v != EOS], repeat=k - 1):
            seq = list(body) + [EOS]
            hist = [BOS, BOS] + seq
            lp = sum(logp[t, hist[t], hist[t + 1], seq[t]] for t in range(k))
            out.append((lp / ((5.0 + k) / 6.0) ** alpha, seq))
    return sorted(out, key=lambda x: -x[0])


@pytest.mark.parametrize("alpha", [0.0, 0.6, 2.0])
def test_wide_beam_search_is_exhaustive_search(alpha):
    max_len, V = 4, 5
    table = np.asarray(jax.random.normal(jax.random.key(3), (max_len, V, V, V))) * 2.0
    # No EOS before the third token, so the cache of the last token matters.
    table[..., EOS] += np.array([-30.0, -30.0, 0.0, 1.0])[:, None, None]
    model = FakeDecoder(table)
    src, src_len = jnp.zeros((1, 1), jnp.int32), jnp.ones((1,), jnp.int32)
    # At most 4^3 = 64 alive prefixes x 5 tokens = 320 candidates per step: 2W = 512
    # candidates means nothing is ever pruned, so the beam keeps all 85 finished ones.
    tokens, scores = decode.beam_search_all(
        model, src, src_len, beam_size=256, max_len=max_len, length_penalty=alpha
    )
    ranked = _exhaustive(table, max_len, alpha)  # 1 + 4 + 16 + 64 = 85 sequences
    got = decode.strip_eos(np.asarray(tokens[0, 0])) + [EOS]
    assert got == ranked[0][1], (got, ranked[0])
    # Every kept hypothesis and its score: only right if each beam's cache was its own.
    np.testing.assert_allclose(np.asarray(scores[0, :85]), [s for s, _ in ranked], rtol=1e-5)
    assert np.all(np.asarray(scores[0, 85:]) == decode.NEG)
    for w in (1, 7, 84):
        want = ranked[w][1]
        assert decode.strip_eos(np.asarray(tokens[0, w])) + [EOS] == want


def test_beam1_equals_greedy_with_eos_and_no_beam_beats_the_exhaustive_one():
    max_len, V = 6, 5
    table = np.array(jax.random.normal(jax.random.key(4), (max_len, V, V, V)))
    table[..., EOS] += np.array([-3.0, -3.0, -1.0, 0.0, 2.0, 4.0])[:, None, None]
    model = FakeDecoder(table, eos_boost=4.0)
    src, src_len = jnp.array([[0], [1]], jnp.int32), jnp.ones((2,), jnp.int32)
    greedy = np.asarray(decode.greedy(model, src, src_len, max_len=max_len))
    assert all(EOS in row for row in greedy), "the fake table should make greedy stop"
    ends = [list(row).index(EOS) for row in greedy]
    assert ends[1] < ends[0], "the boosted row should stop first"
    for row, end in zip(greedy, ends, strict=True):
        assert np.all(row[end + 1 :] == PAD), row
    beam1 = decode.beam_search(
        model, src, src_len, beam_size=1, max_len=max_len, length_penalty=0.0
    )
    np.testing.assert_array_equal(np.asarray(beam1), greedy)
    src, src_len = src[:1], src_len[:1]
    best = [
        float(
            decode.beam_search_all(
                model, src, src_len, beam_size=w, max_len=max_len, length_penalty=0.6
            )[1][0, 0]
        )
        for w in (1, 2, 4, 4**5)  # 4**5: every alive prefix, so exhaustive
    ]
    assert best[-1] >= max(best) - 1e-6


def test_decode_arguments_are_checked():
    model = FakeDecoder(np.zeros((2, 5, 5, 5)))
    src = jnp.zeros((1, 1), jnp.int32)
    with pytest.raises(ValueError, match="beam_size"):
        decode.beam_search(model, src, jnp.ones((1,), jnp.int32), beam_size=0, max_len=2)
    with pytest.raises(ValueError, match="src_len_B"):
        decode.greedy(model, src, jnp.ones((2,), jnp.int32), max_len=2)
