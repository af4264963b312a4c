"""Attention kernels: quality, not speed (issue 6).

Two questions:

1. Loss: with the same model, data, recipe and token budget, how much held-out
   LM loss does each causal kernel cost? Every kernel in
   `attn_jax.ops.kernels.KERNELS` that takes a causal mask trains the decoder LM
   of `experiments/lm.py:size=<size>,kernel=<name>` through the real loop
   (`attn_jax.train.loop.train_and_evaluate`) with the short-run recipe of
   sweeps/demo.py (B 16 x T 64, its per-size learning rate). The exact kernels
   ("xla", "blockwise") should agree up to float reordering; "local" trains with
   a causal sliding window (--window); "linear" and "performer" (FAVOR+, M=256,
   the default: config.model carries no kernel options) are approximations.
   "linformer" is non-causal by construction, so it cannot train a decoder.
   "block_sparse" needs MaskSpec(block, stride), which config.model can only set
   if `LMConfig` has `sparse_block`/`sparse_stride` fields; otherwise it is
   reported as not configurable.

2. Approximation error on real attention inputs: q, k, v (after RoPE) of every
   layer of the trained `s` LM (checkpoint in --ckpt, default runs/lm_s) on
   held-out Shakespeare windows of --approx_seq_len. Each approximate or sparse
   kernel's output is compared to exact softmax attention ("xla") under the same
   causality: relative error ||out - exact|| / ||exact|| per layer (over all
   batch rows, positions and heads), and its mean over layers. Non-causal
   kernels (Linformer, and non-causal Performer / linear) are compared with
   non-causal exact attention. Captured tensors are checked by recomputing the
   layer's own attention output from them (capture_check_max_abs_diff).
   FAVOR+ diagnostics (`favor_diagnostics`): the pair estimator's relative
   std at these q/k norms, and a control at a temperature giving norm 1.

Outputs (--out_dir): kernel_quality.json, kernel_quality.md (both tables),
kernel_quality.png / .svg (loss per kernel; error per kernel config).

    python benchmarks/kernel_quality.py                      # 2xs, 2^18 tokens
    python benchmarks/kernel_quality.py --kernels xla,linear --tokens 65536
    python benchmarks/kernel_quality.py --skip_train         # error table only
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# sweeps/demo.py's LR per size (about d_model^-2/3); S_RECIPE's for "s".
LR = {"6xs": 1e-2, "5xs": 8e-3, "4xs": 7e-3, "3xs": 6e-3, "2xs": 4e-3, "xs": 3e-3, "s": 1.3e-3}
COMMON = {
    "train.batch_size": 16,
    "train.seq_len": 64,
    "train.warmup_steps": 30,
    "train.log_every": 64,
    "train.checkpoint_every": 1 << 30,  # throwaway workdirs: only the final save
    "train.progress_bar": False,
    "train.tensorboard": False,
    "train.report_mfu": False,
    "train.eval_at_tokens": (),
    "data.eval_batches": 32,  # 32 x 16 x 64 = 32k held-out bytes
}
# (label, kernel, causal, options): compared against exact "xla" of the same causality.
APPROX = [
    ("performer M=16", "performer", True, {"num_features": 16}),
    ("performer M=64", "performer", True, {"num_features": 64}),
    ("performer M=256", "performer", True, {"num_features": 256}),
    ("performer M=1024", "performer", True, {"num_features": 1024}),
    ("linear (elu+1)", "linear", True, {}),
    ("local w=64", "local", True, {"window": 64}),
    ("local w=256", "local", True, {"window": 256}),
    ("block_sparse b=32 s=4", "block_sparse", True, {"block": 32, "stride": 4}),
    ("block_sparse b=64 s=4", "block_sparse", True, {"block": 64, "stride": 4}),
    ("performer M=256 (non-causal)", "performer", False, {"num_features": 256}),
    ("linear (non-causal)", "linear", False, {}),
    ("linformer R=64 (non-causal)", "linformer", False, {"proj_len": 64}),
]
PERFORMER_SEEDS = (0, 1, 2)  # random features: error is the mean over draws
FAVOR_M = (16, 64, 256, 1024)  # M of the FAVOR+ diagnostics


def favor_diagnostics(layers, H: int) -> dict:
    """Why FAVOR+'s error does or does not fall with M on these q/k (measured).

    Per layer: (1) the pair estimator's relative variance (exp(|q + k|^2) - 1) / M
    (positive random features, Choromanski et al. 2021, Lemma 2; q, k scaled by
    H^-1/4), at the attention-weighted median of |q + k|^2 over causal pairs;
    (2) a control: the same q/k/v with the softmax temperature raised so that the
    mean scaled norm is 1 (exact attention recomputed at that temperature), where
    the error must fall with M if the kernel is right.
    """
    import jax
    import jax.numpy as jnp
    import numpy as np

    from attn_jax.ops.kernels import get_kernel
    from attn_jax.ops.masks import MaskSpec

    spec = MaskSpec(causal=True)
    out = []
    for L in layers:
        q, k, v = (L[x] * (H**-0.25 if x != "v" else 1.0) for x in ("q", "k", "v"))
        T, G = q.shape[1], q.shape[2] // k.shape[2]
        k_rep = jnp.repeat(k, G, axis=2)
        logits_BNTS = jnp.einsum("BTNH,BSNH->BNTS", q, k_rep)
        causal_TS = jnp.tril(jnp.ones((T, T), jnp.bool_))[None, None]
        weights = jax.nn.softmax(jnp.where(causal_TS, logits_BNTS, -jnp.inf), axis=-1)
        q2 = jnp.sum(q * q, -1).transpose(0, 2, 1)[..., None]
        k2 = jnp.sum(k_rep * k_rep, -1).transpose(0, 2, 1)[:, :, None, :]
        s2 = np.asarray((q2 + k2 + 2 * logits_BNTS)[jnp.broadcast_to(causal_TS, logits_BNTS.shape)])
        w = np.asarray(weights[jnp.broadcast_to(causal_TS, weights.shape)])
        order = np.argsort(s2)
        median = float(s2[order][np.searchsorted(np.cumsum(w[order]), 0.5 * w.sum())])
        norm = float(
            0.5 * (jnp.mean(jnp.linalg.norm(q, axis=-1)) + jnp.mean(jnp.linalg.norm(k, axis=-1)))
        )
        scale = H**-0.5 / norm**2  # mean scaled norm 1
        exact = get_kernel("xla")(L["q"], L["k"], L["v"], spec=spec, scale=scale)
        control = {}
        for m in FAVOR_M:
            errs = []
            for seed in PERFORMER_SEEDS:
                approx = get_kernel("performer")(
                    L["q"], L["k"], L["v"], spec=spec, scale=scale, num_features=m, seed=seed
                )
                errs.append(float(jnp.linalg.norm(approx - exact) / jnp.linalg.norm(exact)))
            control[m] = float(np.mean(errs))
        out.append(
            {
                "weighted_median_qk_sum_sq": median,
                "pair_rel_std_at_M": {m: float(np.sqrt(np.expm1(median) / m)) for m in FAVOR_M},
                "M_for_rel_std_0.1": float(100 * np.expm1(median)),
                "control_mean_norm": norm,
                "control_rel_error_at_M": control,
            }
        )
        print(f"  FAVOR+ layer: median |q+k|^2 {median:.1f}, control errors {control}", flush=True)
    return {"layers": out}


def train_kernel(name: str, args) -> dict:
    """Trains the LM with kernel `name`; the row of the loss table."""
    from attn_jax import configs
    from attn_jax.models import LMConfig
    from attn_jax.ops.kernels import KERNELS
    from attn_jax.train.loop import train_and_evaluate

    row = {"kernel": name, "options": {}}
    if name not in KERNELS:
        return {**row, "status": f"unknown kernel; valid: {sorted(KERNELS)}"}
    if name == "linformer":
        return {**row, "status": "not applicable: non-causal by construction"}
    overrides = {**COMMON, "train.tokens": int(args.tokens), "train.lr": LR.get(args.size, 3e-3)}
    if name == "local":
        overrides["model.window"] = row["options"]["window"] = args.window
    if name == "block_sparse":
        fields = {f.name for f in dataclasses.fields(LMConfig)}
        if not {"sparse_block", "sparse_stride"} <= fields:
            return {
                **row,
                "status": "not configurable: LMConfig has no sparse_block/sparse_stride "
                "(nn.Attention takes them; DecoderLM does not pass them)",
            }
        overrides["model.sparse_block"] = row["options"]["block"] = args.block
        overrides["model.sparse_stride"] = row["options"]["stride"] = args.stride
    if name == "performer":
        row["options"]["num_features"] = 256  # performer's default; no config field
    config = configs.load_config(f"experiments/lm.py:size={args.size},kernel={name}")
    config = configs.apply_overrides(config, overrides)
    with tempfile.TemporaryDirectory(prefix=f"kq_{name}_") as workdir:
        t0 = time.time()
        try:
            record = train_and_evaluate(config, workdir)
        except Exception as err:  # noqa: BLE001 - one kernel's failure is a table row
            return {**row, "status": f"failed: {type(err).__name__}: {str(err)[:300]}"}
        wall = time.time() - t0
    return {
        **row,
        "status": record.get("status"),
        "eval_loss": record.get("best_eval_loss"),
        "final_train_loss": record.get("final_train_loss"),
        "tokens_seen": record.get("tokens_seen"),
        "wall_seconds": wall,
        "loop_wall_seconds": record.get("wall_seconds"),
        "tokens_per_second": record.get("tokens_per_second"),
        "lr": overrides["train.lr"],
    }


def _pure(tree):
    """Orbax's saved nnx.State ({"value": x} leaves, "0" list keys) as a pure dict."""
    if isinstance(tree, dict):
        if set(tree) == {"value"}:
            return tree["value"]
        return {int(k) if k.isdigit() else k: _pure(v) for k, v in tree.items()}
    return tree


def restore_lm(run_dir: str):
    """(model, config dict, step) of the newest checkpoint in run_dir, read only."""
    import ml_collections
    import orbax.checkpoint as ocp
    from flax import nnx

    from attn_jax.models import build_model

    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    model = build_model(ml_collections.ConfigDict(config["model"]), rngs=nnx.Rngs(0))
    ckpt = os.path.join(run_dir, "checkpoints")
    steps = sorted(
        int(d)
        for d in os.listdir(ckpt)
        if d.isdigit() and os.path.isdir(os.path.join(ckpt, d, "state"))
    )
    if not steps:
        raise FileNotFoundError(f"no checkpoint steps in {ckpt}")
    saved = ocp.StandardCheckpointer().restore(
        os.path.abspath(os.path.join(ckpt, str(steps[-1]), "state"))
    )
    _, params, _ = nnx.split(model, nnx.Param, ...)
    nnx.replace_by_pure_dict(params, _pure(saved["params"]))
    nnx.update(model, params)
    return model, config, steps[-1]


def capture_qkv(model, inputs_BT):
    """Per layer (q_BTNH, k_BTKH, v_BTKH) after RoPE, the layer's attention output,
    and the model's logits: the blocks run one by one, projections recomputed
    from each layer's own weights exactly as `nn.Attention` does."""
    import jax.numpy as jnp

    from attn_jax.ops import positions as pos_ops

    T = inputs_BT.shape[1]
    positions_BT = jnp.arange(T, dtype=jnp.int32)[None, :]
    x_BTD = model.embed(inputs_BT, positions_BT)
    layers = []
    for block in model.blocks:
        attn = block.attn
        h_BTD = block.attn_norm(x_BTD) if block.norm == "pre" else x_BTD
        qkv_BTMH = jnp.einsum("BTD,DMH->BTMH", h_BTD, attn.w_qkv[...])
        N, K = attn.num_heads, attn.num_kv_heads
        q, k, v = jnp.split(qkv_BTMH, [N, N + K], axis=2)
        if attn.position == "rope":
            q = pos_ops.apply_rope(q, positions_BT, attn.rope_base)
            k = pos_ops.apply_rope(k, positions_BT, attn.rope_base)
        layers.append({"q": q, "k": k, "v": v, "attn_out": attn(h_BTD, positions_BT=positions_BT)})
        x_BTD = block(x_BTD, positions_BT=positions_BT)
    return layers, model(inputs_BT)


def _heldout_windows(config, batch: int, seq_len: int):
    """(inputs_BT, targets_BT): `batch` full windows spread evenly over the held-out split."""
    import jax.numpy as jnp
    import ml_collections
    import numpy as np

    from attn_jax.data import make_lm_data

    _, eval_fn = make_lm_data(
        ml_collections.ConfigDict(config["data"]), batch_size=batch, seq_len=seq_len, seed=0
    )
    # Rows spread evenly over the whole held-out set (every play), not one batch.
    batches = eval_fn()
    rows_of = {k: np.concatenate([b[k] for b in batches]) for k in ("inputs", "targets", "weights")}
    valid = np.flatnonzero(rows_of["weights"].min(1) > 0)
    pick = valid[np.linspace(0, len(valid) - 1, batch).astype(int)]
    return jnp.asarray(rows_of["inputs"][pick]), jnp.asarray(rows_of["targets"][pick])


def _error_row(label, name, causal, options, layers, exact_outs, T: int) -> dict:
    """One APPROX entry: its relative error against exact attention, per layer."""
    import jax.numpy as jnp
    import numpy as np

    from attn_jax.ops.kernels import get_kernel
    from attn_jax.ops.masks import MaskSpec

    fn = get_kernel(name)
    spec_fields = {k: options[k] for k in ("window", "block", "stride") if k in options}
    spec = MaskSpec(causal=causal, **spec_fields)
    call_opts = {k: v for k, v in options.items() if k not in spec_fields}
    seeds = PERFORMER_SEEDS if name == "performer" else (None,)
    per_layer = []
    for L, ref in zip(layers, exact_outs):
        errs = []
        for seed in seeds:
            extra = {} if seed is None else {"seed": seed}
            out = fn(L["q"], L["k"], L["v"], spec=spec, **call_opts, **extra)
            errs.append(float(jnp.linalg.norm(out - ref) / jnp.linalg.norm(ref)))
        per_layer.append(float(np.mean(errs)))
    density = None
    if spec_fields:  # fraction of causal (query, key) pairs the pattern keeps
        density = float(np.asarray(spec.dense(T, T)).sum() / (T * (T + 1) / 2))
    return {
        "label": label,
        "kernel": name,
        "causal": causal,
        "options": options,
        "rel_error_per_layer": per_layer,
        "rel_error_mean": float(np.mean(per_layer)),
        "density": density,
        "seeds": list(seeds) if seeds[0] is not None else None,
    }


def approx_errors(args) -> dict:
    """Relative error of each APPROX kernel against exact attention on the `s` LM's q/k/v."""
    import jax
    import jax.numpy as jnp
    import optax

    from attn_jax.ops.kernels import get_kernel
    from attn_jax.ops.masks import MaskSpec

    if not os.path.isdir(os.path.join(args.ckpt, "checkpoints")):
        msg = f"no trained LM checkpoint at {args.ckpt}: approximation-error part skipped"
        print(msg)
        return {"skipped": msg}
    model, config, step = restore_lm(args.ckpt)
    inputs_BT, targets_BT = _heldout_windows(config, args.approx_batch, args.approx_seq_len)
    layers, logits_BTV = capture_qkv(model, inputs_BT)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits_BTV, targets_BT)
    H = layers[0]["q"].shape[-1]
    w_out = [b.attn.w_out[...] for b in model.blocks]
    exact_fn = get_kernel("xla")
    exact = {}
    check = 0.0
    for causal in (True, False):
        exact[causal] = [
            exact_fn(L["q"], L["k"], L["v"], spec=MaskSpec(causal=causal)) for L in layers
        ]
    for L, out, w in zip(layers, exact[True], w_out):
        recomputed = jnp.einsum("BTNH,NHD->BTD", out, w)
        check = max(check, float(jnp.max(jnp.abs(recomputed - L["attn_out"]))))
    # FAVOR+'s estimator variance grows like exp(|q|^2 + |k|^2) of the scaled
    # inputs (Choromanski et al. 2021, Lemma 2): record those norms per layer.
    layer_stats = [
        {
            "q_norm_mean": float(jnp.mean(jnp.linalg.norm(L["q"], axis=-1)) * H**-0.25),
            "k_norm_mean": float(jnp.mean(jnp.linalg.norm(L["k"], axis=-1)) * H**-0.25),
        }
        for L in layers
    ]
    T = args.approx_seq_len
    rows = []
    for label, name, causal, options in APPROX:
        rows.append(_error_row(label, name, causal, options, layers, exact[causal], T))
        print(f"  {label:30s} mean rel err {rows[-1]['rel_error_mean']:.4f}", flush=True)
    favor = favor_diagnostics(layers, H)
    return {
        "favor_diagnostics": favor,
        "checkpoint": os.path.join(args.ckpt, "checkpoints", str(step)),
        "model": config["model"],
        "trained_seq_len": config["train"]["seq_len"],
        "inputs": f"held-out {config['data']['name']} ({config['data']['eval_split']}), "
        f"{inputs_BT.shape[0]} windows of T={T} spread over the split",
        "head_dim": H,
        "heldout_loss_on_these_inputs": float(jnp.mean(loss)),
        "capture_check_max_abs_diff": check,
        "layer_stats": layer_stats,
        "jax_backend": jax.default_backend(),
        "rows": rows,
    }


def _fmt(x, spec=".4f"):
    return "-" if x is None else format(x, spec)


def write_markdown(result: dict, path: str) -> str:
    lines = [
        f"## Held-out loss per kernel ({result['size']}, {result['tokens']} tokens, B 16 x T 64)",
        "",
        "| kernel | options | status | eval loss (nats/byte) | wall s | tokens/s |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["loss"]:
        opts = ", ".join(f"{k}={v}" for k, v in r["options"].items()) or "-"
        lines.append(
            f"| {r['kernel']} | {opts} | {r['status']} | {_fmt(r.get('eval_loss'))} | "
            f"{_fmt(r.get('wall_seconds'), '.1f')} | {_fmt(r.get('tokens_per_second'), '.0f')} |"
        )
    approx = result["approx"]
    lines += ["", "## Approximation error on real q/k/v", ""]
    if "rows" not in approx:
        lines.append(approx.get("skipped", "not run"))
    else:
        lines += [
            f"{approx['inputs']}; checkpoint {approx['checkpoint']} (trained at T="
            f"{approx['trained_seq_len']}); its loss on these inputs "
            f"{approx['heldout_loss_on_these_inputs']:.3f}.",
            "",
            "Scaled norms |q| H^-1/4, |k| H^-1/4 per layer (FAVOR+ variance grows as "
            "exp(|q|^2 + |k|^2)): "
            + "; ".join(
                f"{s['q_norm_mean']:.2f}, {s['k_norm_mean']:.2f}" for s in approx["layer_stats"]
            )
            + ".",
            "",
            "| kernel | vs exact | density | rel error (mean) | per layer |",
            "|---|---|---|---|---|",
        ]
        for r in approx["rows"]:
            per = " ".join(f"{e:.3f}" for e in r["rel_error_per_layer"])
            ref = "causal" if r["causal"] else "non-causal"
            lines.append(
                f"| {r['label']} | {ref} | {_fmt(r['density'], '.2f')} | "
                f"{r['rel_error_mean']:.4f} | {per} |"
            )
        lines += favor_markdown(approx.get("favor_diagnostics", {}).get("layers", []))
    text = "\n".join(lines) + "\n"
    with open(path, "w") as f:
        f.write(text)
    return text


def favor_markdown(layers: list) -> list:
    """The FAVOR+ diagnostics table (see `favor_diagnostics`)."""
    if not layers:
        return []
    ms = list(layers[0]["control_rel_error_at_M"])
    lines = [
        "",
        "## FAVOR+ (causal Performer): why the error does or does not fall with M",
        "",
        "Pair estimator relative std sqrt((exp(|q+k|^2) - 1) / M) (Choromanski et al. 2021, "
        "Lemma 2) at the attention-weighted median |q+k|^2 of each layer; and a control: the "
        "same q/k/v at a temperature that makes the mean scaled norm 1, error vs exact "
        "attention at that temperature (mean of seeds).",
        "",
        "| layer | median \\|q+k\\|^2 | rel std at M="
        + "/".join(str(m) for m in ms)
        + " | M for rel std 0.1 | control error at M="
        + "/".join(str(m) for m in ms)
        + " |",
        "|---|---|---|---|---|",
    ]
    for i, d in enumerate(layers):
        std = " / ".join(f"{d['pair_rel_std_at_M'][m]:.3g}" for m in ms)
        ctrl = " / ".join(f"{d['control_rel_error_at_M'][m]:.3f}" for m in ms)
        lines.append(
            f"| {i} | {d['weighted_median_qk_sum_sq']:.1f} | {std} | "
            f"{d['M_for_rel_std_0.1']:.3g} | {ctrl} |"
        )
    return lines


def plot(result: dict, stem: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8))
    trained = [r for r in result["loss"] if r.get("eval_loss") is not None]
    names = [
        r["kernel"] + (f"\nw={r['options']['window']}" if "window" in r["options"] else "")
        for r in trained
    ]
    losses = [r["eval_loss"] for r in trained]
    ax1.bar(names, losses, color="tab:blue")
    for i, v in enumerate(losses):
        ax1.text(i, v, f"{v:.3f}", ha="center", va="bottom", fontsize=8)
    if losses:
        ax1.set_ylim(min(losses) * 0.95, max(losses) * 1.03)
    skipped = [r["kernel"] for r in result["loss"] if r.get("eval_loss") is None]
    ax1.set_title(
        f"Held-out loss, {result['size']} LM, {result['tokens']} tokens"
        + (f"\n(not trained: {', '.join(skipped)})" if skipped else ""),
        fontsize=9,
    )
    ax1.set_ylabel("eval loss (nats/byte)")
    rows = result["approx"].get("rows", [])
    if rows:
        colors = ["tab:orange" if r["causal"] else "tab:gray" for r in rows]
        ax2.barh([r["label"] for r in rows], [r["rel_error_mean"] for r in rows], color=colors)
        ax2.invert_yaxis()
        ax2.set_xscale("log")
        ax2.set_xlabel("||out - exact|| / ||exact|| (mean over layers)")
        ax2.set_title("Error on the s LM's q/k/v (orange: causal, gray: non-causal)", fontsize=9)
    else:
        ax2.text(0.5, 0.5, result["approx"].get("skipped", "not run")[:60], ha="center")
        ax2.axis("off")
    fig.tight_layout()
    for ext in ("png", "svg"):
        fig.savefig(f"{stem}.{ext}", dpi=120)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="2xs")
    p.add_argument("--tokens", type=int, default=2**18)
    p.add_argument(
        "--kernels", default="xla,blockwise,local,block_sparse,linear,performer,linformer"
    )
    p.add_argument("--window", type=int, default=16, help="local kernel's window in training")
    p.add_argument("--block", type=int, default=8, help="block_sparse block (if configurable)")
    p.add_argument("--stride", type=int, default=2, help="block_sparse stride (if configurable)")
    p.add_argument("--ckpt", default="runs/lm_s")
    p.add_argument("--approx_seq_len", type=int, default=512)
    p.add_argument("--approx_batch", type=int, default=8)
    p.add_argument("--skip_train", action="store_true")
    p.add_argument("--skip_approx", action="store_true")
    p.add_argument(
        "--loss_from",
        default="",
        help="an earlier kernel_quality.json whose loss rows are kept for kernels not trained now",
    )
    p.add_argument("--out_dir", default="benchmarks/results")
    args = p.parse_args()

    from attn_jax import runtime

    runtime.ensure_malloc_tunables()
    import jax

    os.makedirs(args.out_dir, exist_ok=True)
    result = {
        "size": args.size,
        "tokens": args.tokens,
        "command": " ".join(sys.argv),
        "jax_version": jax.__version__,
        "devices": str(jax.devices()),
        "loadavg_start": os.getloadavg(),
        "loss": [],
        "approx": {"skipped": "--skip_approx"},
    }
    print(f"load average at start: {os.getloadavg()}", flush=True)
    t0 = time.time()
    if not args.skip_train:
        for name in args.kernels.split(","):
            row = train_kernel(name.strip(), args)
            result["loss"].append(row)
            print(
                f"{row['kernel']:12s} {row['status']}  loss {_fmt(row.get('eval_loss'))}  "
                f"{_fmt(row.get('wall_seconds'), '.1f')} s  load {os.getloadavg()}",
                flush=True,
            )
    if args.loss_from:
        with open(args.loss_from) as f:
            earlier = json.load(f)["loss"]
        trained = {r["kernel"] for r in result["loss"]}
        kept = [
            dict(r, note=f"from {args.loss_from}") for r in earlier if r["kernel"] not in trained
        ]
        order = [r["kernel"] for r in earlier]
        result["loss"] = sorted(
            kept + result["loss"],
            key=lambda r: order.index(r["kernel"]) if r["kernel"] in order else len(order),
        )
    if not args.skip_approx:
        print("approximation error on real q/k/v:", flush=True)
        result["approx"] = approx_errors(args)
    result["loadavg_end"] = os.getloadavg()
    result["total_seconds"] = time.time() - t0
    stem = os.path.join(args.out_dir, "kernel_quality")
    with open(stem + ".json", "w") as f:
        json.dump(result, f, indent=1)
    print(write_markdown(result, stem + ".md"))
    plot(result, stem)
    print(f"load average at end: {os.getloadavg()}; wrote {stem}.{{json,md,png,svg}}")


if __name__ == "__main__":
    main()
