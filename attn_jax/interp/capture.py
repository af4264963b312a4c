"""Inference-time capture of attention weights, q/k/v and the residual stream.

Dimension key: B batch, T query length, S key length, D model width, N query
heads, K key/value heads (G = N/K), H head dim, n heads asked.

    logits, cache = run_with_cache(model, tokens_BT, heads=[0, 2])
    cache["blocks.3.attn.weights"]        # weights_BnTS, float32
    cache["decoder.1.cross_attn.weights"] # seq2seq cross attention
    cache["blocks.3.resid_post"]          # x_BTD after block 3 (what=("resid_post",))

TransformerLens' `run_with_cache` is the model for the interface; this one works
on any NNX module built on `attn_jax.nn.Attention` (LM, MLM encoder, seq2seq,
ViT, and the vision-language models, which share the layer). Keys are the
module paths (`nnx.iter_modules`) joined by dots plus what was captured.

How, and why the model's outputs do not change: `Attention.__call__` calls the
hook in `attn_jax.nn.attention.CAPTURE` after its kernel ran; the hook is None
outside `capture`, read at trace time, so the training step traces exactly as
before. Inside `capture` the hook recomputes the weights densely from the
layer's own q and k (after RoPE), score, mask (causal, window, sparse pattern,
padding via kv lengths, an extra mask) and ALiBi/T5 bias, for the heads asked
only: the kernel (blockwise, local, block-sparse, cuDNN) and its output are
untouched, and a long input needs a T x S buffer only for those heads. The
residual stream is read by wrapping the `__call__` of the classes that hold an
`attn` (the Block), only while a capture is open: the same technique as
`nnx.capture(method_outputs=...)`, restored on exit.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from attn_jax.nn.attention import CAPTURE, Attention
from attn_jax.ops.attention import attention_weights
from attn_jax.ops.kernels import EXACT_KERNELS, dense_bias, dense_mask

# "z" is the per-head attention output before the output projection (TransformerLens' hook_z).
ATTENTION_WHAT = ("weights", "q", "k", "v", "z")
BLOCK_WHAT = ("resid_pre", "resid_post")
WHAT = ATTENTION_WHAT + BLOCK_WHAT

# The open capture, for the block wrappers (the attention layer reads nn.attention.CAPTURE).
_BLOCK_CAPTURE: contextvars.ContextVar = contextvars.ContextVar("attn_jax_block", default=None)


def module_paths(model: nnx.Module) -> dict[int, str]:
    """{id(module): dotted path} of every module, e.g. "blocks.3.attn" ("" = the root)."""
    return {id(m): ".".join(str(p) for p in path) for path, m in nnx.iter_modules(model)}


def _key(path: str, name: str) -> str:
    """ "blocks.3.attn" + "weights" -> "blocks.3.attn.weights" (the root module: "weights")."""
    return f"{path}.{name}" if path else name


def _check_what(what: Sequence[str]) -> tuple[str, ...]:
    what = (what,) if isinstance(what, str) else tuple(what)
    unknown = [w for w in what if w not in WHAT]
    if unknown or not what:
        raise ValueError(f"Unknown capture what={list(what)}; valid entries: {list(WHAT)}.")
    return what


def _layer_index(path: str) -> int | None:
    """The index of the layer list a module sits in: "decoder.3.cross_attn" -> 3."""
    ints = [int(p) for p in path.split(".") if p.isdigit()]
    return ints[0] if ints else None


def _wanted(block_path: str, layers) -> bool:
    """Whether `layers` (None, ints = layer indices, strings = path prefixes) asks for it."""
    if layers is None:
        return True
    for sel in layers:
        if isinstance(sel, str):
            if block_path == sel or block_path.startswith(sel + "."):
                return True
        elif _layer_index(block_path) == int(sel):
            return True
    return False


def _select_heads(x, heads, N: int, axis: int):
    """x indexed by `heads` along `axis` when that axis has all N heads (else broadcast)."""
    return jnp.take(x, heads, axis=axis) if x.shape[axis] == N and N > 1 else x


def dense_weights(
    layer: Attention,
    q_BTNH,
    k_BSKH,
    *,
    q_offset=0,
    kv_lengths_B=None,
    mask=None,
    heads: Sequence[int] | None = None,
):
    """weights_BnTS (float32) of `layer` for query heads `heads` (None = all), densely.

    The layer's score (and its parameters), scale, `spec` mask at `q_offset`, key
    padding, extra mask and relative-position bias, as every exact kernel applies
    them; query head h reads kv head h // G.
    """
    N, K = layer.num_heads, layer.num_kv_heads
    heads_n = np.arange(N) if heads is None else np.asarray(heads, np.int32).reshape(-1)
    if heads_n.size == 0 or heads_n.min() < 0 or heads_n.max() >= N:
        raise ValueError(f"heads={list(heads_n)} must be non-empty indices in [0, {N}).")
    T, S = q_BTNH.shape[1], k_BSKH.shape[1]
    q_BTnH = q_BTNH[:, :, heads_n]
    k_BSnH = k_BSKH[:, :, heads_n // (N // K)]
    bias = dense_bias(layer._bias_fn(), T, S, q_offset)
    full_mask = dense_mask(layer.spec, T, S, q_offset, kv_lengths_B, mask)
    params = {
        name: _select_heads(v[...], heads_n, N, axis=0) for name, v in layer.score_params.items()
    }
    return attention_weights(
        q_BTnH,
        k_BSnH,
        mask=None if full_mask is None else _select_heads(full_mask, heads_n, N, axis=1),
        bias=None if bias is None else _select_heads(bias, heads_n, N, axis=1),
        scale=1.0 if layer.score == "dot" else None,
        score=layer.score,
        score_params=params or None,
    )


class Capture(Mapping):
    """The arrays of one open capture, by key ("blocks.3.attn.weights"); a read-only mapping."""

    def __init__(self, model, *, layers, heads, what, perturb):
        self.what = _check_what(what)
        self.layers = None if layers is None else list(layers)
        self.heads = None if heads is None else [int(h) for h in heads]
        self.perturb = dict(perturb or {})
        self.paths = module_paths(model)
        self._arrays: dict[str, Any] = {}
        self._check_kernels(model)

    def _check_kernels(self, model) -> None:
        """Weights of an approximate kernel are no softmax over keys: refuse, before tracing."""
        if "weights" not in self.what:
            return
        for path, m in nnx.iter_modules(model):
            if isinstance(m, Attention) and m.kernel not in EXACT_KERNELS:
                raise ValueError(
                    f"{'.'.join(map(str, path))} uses kernel={m.kernel!r}, whose output is not "
                    f"softmax attention; weights are captured for exact kernels "
                    f"({', '.join(EXACT_KERNELS)}). Capture what=('q', 'k', 'v') instead."
                )

    def _put(self, key: str, value) -> None:
        if key in self._arrays:
            raise ValueError(
                f"{key} was captured twice in one capture: capture one forward pass at a time."
            )
        self._arrays[key] = value

    def attention_hook(self, layer, *, q_BTNH, k_BSKH, v_BSKH, out_BTNH, **mask_args) -> None:
        """Called by `Attention.__call__` (via nn.attention.CAPTURE) after its kernel."""
        path = self.paths.get(id(layer))
        if path is None or not _wanted(path, self.layers):
            return
        heads_n = None if self.heads is None else np.asarray(self.heads, np.int32)
        if "weights" in self.what:
            self._put(
                _key(path, "weights"),
                dense_weights(layer, q_BTNH, k_BSKH, heads=heads_n, **mask_args),
            )
        for name, x in (("q", q_BTNH), ("k", k_BSKH), ("v", v_BSKH), ("z", out_BTNH)):
            if name in self.what:
                self._put(_key(path, name), x)

    def block_call(self, block, call: Callable, x_BTD, *args, **kwargs):
        """A Block's call with its input and output recorded (and perturbed when asked)."""
        path = self.paths.get(id(block))
        if path is None:
            return call(block, x_BTD, *args, **kwargs)
        if path in self.perturb:  # a zero here makes d(target)/d(resid_pre) a gradient
            x_BTD = x_BTD + self.perturb[path].astype(x_BTD.dtype)
        out = call(block, x_BTD, *args, **kwargs)
        if _wanted(path, self.layers):
            if "resid_pre" in self.what:
                self._put(_key(path, "resid_pre"), x_BTD)
            if "resid_post" in self.what:
                self._put(_key(path, "resid_post"), out[0] if isinstance(out, tuple) else out)
        return out

    def __getitem__(self, key):
        return self._arrays[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)


def _block_classes(model) -> set[type]:
    """Classes of the modules holding a self-attention `attn` (attn_jax.nn.Block and kin)."""
    return {
        type(m)
        for _, m in nnx.iter_modules(model)
        if isinstance(getattr(m, "attn", None), Attention)
    }


def _wrap_call(cls: type) -> bool:
    """Routes cls.__call__ through the open capture; False when already wrapped."""
    call = cls.__dict__.get("__call__")
    if call is None or getattr(call, "_interp_capture", False):
        return False

    @functools.wraps(call)
    def wrapper(self, *args, **kwargs):
        cap = _BLOCK_CAPTURE.get()
        if cap is None:
            return call(self, *args, **kwargs)
        return cap.block_call(self, call, *args, **kwargs)

    wrapper._interp_capture = True
    cls.__call__ = wrapper
    return True


@contextlib.contextmanager
def capture(
    model: nnx.Module,
    *,
    layers: Sequence[int | str] | None = None,
    heads: Sequence[int] | None = None,
    what: Sequence[str] = ("weights",),
    perturb: Mapping[str, Any] | None = None,
):
    """Records what `model`'s attention layers and blocks compute inside the `with`.

    Works eagerly or inside a function being traced (then the arrays are tracers:
    return them from it, as `run_with_cache` does).

    Args:
      model: an NNX module containing `attn_jax.nn.Attention` layers.
      layers: None = all; ints = layer indices (the index in the module's layer
        list: 3 matches "blocks.3", "encoder.3" and "decoder.3"); strings = path
        prefixes ("decoder.1", "encoder").
      heads: query heads whose weights to compute (None = all), in this order.
      what: entries of WHAT: "weights" (BnTS), "q" (BTNH, after RoPE), "k", "v"
        (BSKH), "z" (per-head output BTNH), "resid_pre"/"resid_post" (a block's
        input/output BTD).
      perturb: {block path: array_BTD} added to that block's input (zeros, for
        gradients with respect to the residual stream; see interp.attribution).

    Yields:
      A `Capture` mapping keys like "blocks.3.attn.weights" to arrays, filled as
      the model runs.
    """
    cap = Capture(model, layers=layers, heads=heads, what=what, perturb=perturb)
    wrapped = (
        [cls for cls in _block_classes(model) if _wrap_call(cls)]
        if set(cap.what) & set(BLOCK_WHAT) or cap.perturb
        else []
    )
    attn_token = CAPTURE.set(cap.attention_hook)
    block_token = _BLOCK_CAPTURE.set(cap)
    try:
        yield cap
    finally:
        _BLOCK_CAPTURE.reset(block_token)
        CAPTURE.reset(attn_token)
        for cls in wrapped:
            cls.__call__ = cls.__dict__["__call__"].__wrapped__


def _caller(method: str | Callable | None) -> Callable:
    """fn(model, *inputs, **kwargs) for `method`: None = __call__, a name, or a callable."""
    if method is None:
        return lambda m, *a, **k: m(*a, **k)
    if isinstance(method, str):
        return lambda m, *a, **k: getattr(m, method)(*a, **k)
    if callable(method):
        return method
    raise ValueError(f"method must be None, a method name or a callable, got {method!r}.")


def run_with_cache(
    model: nnx.Module,
    *inputs,
    layers: Sequence[int | str] | None = None,
    heads: Sequence[int] | None = None,
    what: Sequence[str] = ("weights",),
    method: str | Callable | None = None,
    jit: bool = True,
    **kwargs,
):
    """(outputs, cache): the model's outputs on `inputs` and what `capture` recorded.

    Args:
      model: an NNX module built on `attn_jax.nn.Attention`.
      *inputs: its positional inputs (arrays): tokens_BT for an LM; tokens_BT,
        lengths_B for the MLM encoder; src_BS, src_len_B, tgt_in_BT for seq2seq;
        images_BHWC for a ViT.
      layers, heads, what: as `capture`.
      method: None = `model(*inputs)`, a method name ("features", "encode") or
        fn(model, *inputs, **kwargs).
      jit: trace once under `jax.jit` (the model's state as an argument, so the
        outputs are those of the jitted model); False runs eagerly.
      **kwargs: static keyword arguments of the call (e.g. deterministic=True).

    Returns:
      outputs as the call returns them, and a dict {key: array}.
    """
    call = _caller(method)
    options = dict(layers=layers, heads=heads, what=what)
    if not jit:
        with capture(model, **options) as cache:
            outputs = call(model, *inputs, **kwargs)
        return outputs, dict(cache)
    graphdef, state = nnx.split(model)

    @jax.jit
    def run(state, inputs):
        m = nnx.merge(graphdef, state)
        with capture(m, **options) as cache:
            outputs = call(m, *inputs, **kwargs)
        return outputs, dict(cache)

    return run(state, inputs)
