"""The masked-LM family: BERT-style pretraining of a bidirectional encoder.

Unit "tokens" = masked positions, the ones that carry loss: a step plans
batch_size x seq_len x data.mask_rate of them (attn_jax.families._mlm_units),
and `flops_per_unit` is the encoder's training FLOPs per position divided by
mask_rate (every position is computed; attn_jax.models.encoder). The loss and
the held-out metrics are the cross-entropy (nats per byte) and accuracy of the
original byte at the masked positions; data in attn_jax.data.mlm.
"""

from __future__ import annotations

import ml_collections

from attn_jax.families import base


def counts(config: ml_collections.ConfigDict) -> dict:
    """Analytic parameter counts and training FLOPs per masked token of `config`'s encoder."""
    from attn_jax.models import encoder

    model_cfg = encoder.EncoderConfig.from_config(config.model)
    c = encoder.param_counts(model_cfg)
    return {
        "params_total": c["total"],
        "params_embedding": c["embedding"],
        "params_non_embedding": c["non_embedding"],
        "flops_per_unit": encoder.flops_per_masked_token(
            model_cfg, int(config.train.seq_len), float(config.data.mask_rate)
        ),
    }


def make(config: ml_collections.ConfigDict) -> base.Family:
    """The MLM `Family` of `config` (experiments/mlm.py)."""
    from attn_jax.data import mlm as mlm_data
    from attn_jax.models import encoder

    model_cfg = encoder.EncoderConfig.from_config(config.model)
    if model_cfg.vocab_size != mlm_data.VOCAB_SIZE:
        raise ValueError(
            f"config.model.vocab_size={model_cfg.vocab_size} must be {mlm_data.VOCAB_SIZE} "
            "(256 bytes + 4 special tokens, attn_jax.data.mlm)."
        )
    label_smoothing = float(config.train.get("label_smoothing", 0.0))
    seq_len = int(config.train.seq_len)
    if seq_len > model_cfg.max_len:
        raise ValueError(f"train.seq_len={seq_len} exceeds model.max_len={model_cfg.max_len}.")

    def model(rngs):
        return encoder.Encoder(model_cfg, rngs=rngs)

    def data(**kwargs):
        kwargs.pop("seq_len", None)
        return mlm_data.make_mlm_data(config.data, seq_len=seq_len, **kwargs)

    def _weights(batch):
        # Padded eval rows carry no weight already; multiplying by valid keeps it so.
        return batch["weights"] * batch["valid"][:, None] if "valid" in batch else batch["weights"]

    def loss(model, batch, rng):
        logits_BTV = model(
            batch["inputs"], batch["lengths"], deterministic=rng is None, dropout_rng=rng
        )
        return base.classification_loss(
            logits_BTV, batch["targets"], _weights(batch), label_smoothing
        )

    def eval_sums(model, batch):
        logits_BTV = model(batch["inputs"], batch["lengths"], deterministic=True)
        return base.classification_sums(logits_BTV, batch["targets"], _weights(batch))

    return base.Family(
        name="mlm",
        unit="tokens",
        model=model,
        data=data,
        loss=loss,
        eval_sums=eval_sums,
        eval_finalize=base.classification_finalize,
        sizes=base.checked_sizes(counts, config, "attn_jax.models.encoder.param_counts"),
        uses_dropout=bool(model_cfg.dropout or model_cfg.attn_dropout),
    )
