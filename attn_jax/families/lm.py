"""The decoder LM family: next-token cross-entropy on token windows."""

from __future__ import annotations

import ml_collections

from attn_jax.families import base


def counts(config: ml_collections.ConfigDict) -> dict:
    """Analytic parameter counts and training FLOPs per token of `config`'s LM."""
    from attn_jax.models import flops

    c = flops.param_counts(config.model)
    return {
        "params_total": c["total"],
        "params_embedding": c["embedding"],
        "params_non_embedding": c["non_embedding"],
        "flops_per_unit": flops.flops_per_token(config.model, int(config.train.seq_len)),
    }


def make(config: ml_collections.ConfigDict) -> base.Family:
    """The LM `Family` of `config` (experiments/lm.py)."""
    from attn_jax.data import make_lm_data
    from attn_jax.models.lm import DecoderLM, LMConfig

    model_cfg = LMConfig.from_config(config.model)
    label_smoothing = float(config.train.get("label_smoothing", 0.0))
    seq_len = int(config.train.seq_len)

    def model(rngs):
        return DecoderLM(model_cfg, rngs=rngs)

    def data(**kwargs):
        return make_lm_data(config.data, seq_len=seq_len, **kwargs)

    def loss(model, batch, rng):
        logits_BTV = model(batch["inputs"], deterministic=rng is None, dropout_rng=rng)
        return base.classification_loss(
            logits_BTV, batch["targets"], batch["weights"], label_smoothing
        )

    def eval_sums(model, batch):
        logits_BTV = model(batch["inputs"], deterministic=True)
        return base.classification_sums(logits_BTV, batch["targets"], batch["weights"])

    return base.Family(
        name="lm",
        unit="tokens",
        model=model,
        data=data,
        loss=loss,
        eval_sums=eval_sums,
        eval_finalize=base.classification_finalize,
        sizes=base.checked_sizes(counts, config, "attn_jax.models.flops.param_counts"),
        uses_dropout=bool(model_cfg.dropout or model_cfg.attn_dropout),
    )
