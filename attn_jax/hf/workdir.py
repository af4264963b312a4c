"""An imported checkpoint as an attn_jax run directory, and a run directory as a checkpoint.

`import_checkpoint(src, workdir)` writes what a trained run leaves and what
`python -m attn_jax.generate` and `analysis/attention.py` open:
  config.json        the family's experiment config (experiments/<family>.py
                     defaults for train and data) with config.model replaced by
                     the imported architecture; an LM's data.tokenizer is "hf"
                     (data.tokenizer_path: the copied tokenizer.json) or "byte"
  checkpoints/0/     a TrainState at step 0: the imported params, a fresh
                     optimizer state of config.train, the seed's rng
  tokenizer.json     the checkpoint's tokenizer (LM), when it has one
  hf_import.json     provenance: the source directory, the format, its config.json,
                     the tensors left out on purpose
`export_workdir(workdir, dst)` restores a run's latest checkpoint (trained or
imported) and writes it with `attn_jax.hf.checkpoint.save_model`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil

import ml_collections

from attn_jax.hf import checkpoint as hf_ckpt
from attn_jax.hf.mapping import MappingError

EXPERIMENTS = pathlib.Path(__file__).resolve().parents[2] / "experiments"
TOKENIZER = "tokenizer.json"


def experiment_config(family: str, experiment: str | None = None) -> ml_collections.ConfigDict:
    """The family's experiment config (unlocked), e.g. experiments/lm.py's defaults."""
    from attn_jax import configs

    spec = experiment or str(EXPERIMENTS / f"{family}.py")
    if not os.path.exists(spec.partition(":")[0]):
        raise MappingError(
            f"No experiment file {spec} to take config.train and config.data from; pass "
            f"--experiment path/to/experiments/{family}.py."
        )
    return ml_collections.ConfigDict(configs.load_config(spec).to_dict())


def _tokenizer_file(src: str, workdir: str, explicit: str | None) -> str | None:
    """The workdir's tokenizer.json: --tokenizer, the checkpoint's own, or GPT-2's vocab+merges."""
    dst = os.path.join(workdir, TOKENIZER)
    candidate = explicit or os.path.join(src, TOKENIZER)
    if os.path.exists(candidate):
        shutil.copyfile(candidate, dst)
        return dst
    if explicit:
        raise MappingError(f"--tokenizer {explicit} does not exist.")
    vocab, merges = os.path.join(src, "vocab.json"), os.path.join(src, "merges.txt")
    if os.path.exists(vocab) and os.path.exists(merges):  # GPT-2's slow-tokenizer files
        try:
            from tokenizers import ByteLevelBPETokenizer
        except ModuleNotFoundError:
            raise MappingError(f"Reading vocab.json/merges.txt needs {hf_ckpt.INSTALL}.") from None
        ByteLevelBPETokenizer(vocab, merges).save(dst)
        return dst
    return None


def _lm_data(config, src: str, workdir: str, vocab_size: int, tokenizer: str | None) -> None:
    from attn_jax.data.tokenizers import HFTokenizer

    path = _tokenizer_file(src, workdir, tokenizer)
    if path is None:
        if vocab_size != 256:
            raise MappingError(
                f"{src} has no tokenizer.json (nor vocab.json + merges.txt) and the vocabulary "
                f"is {vocab_size}, not the 256 bytes: pass --tokenizer path/to/tokenizer.json."
            )
        config.data.tokenizer = "byte"
        return
    size = HFTokenizer(path).vocab_size
    if size > vocab_size:
        raise MappingError(f"{path} has {size} tokens; the model's vocabulary is {vocab_size}.")
    config.data.tokenizer = "hf"
    config.data.tokenizer_path = os.path.abspath(path)


def write_state(model, config, workdir: str) -> None:
    """checkpoints/0: the model's params as a TrainState of `config` (fresh optimizer state)."""
    import jax
    import jax.numpy as jnp

    from attn_jax.train import checkpoint as ckpt_lib
    from attn_jax.train import optim
    from attn_jax.train.state import TrainState, split_model

    _, params, model_state = split_model(model)
    tx, _ = optim.make_optimizer(config.train, max(int(config.train.get("steps", 1) or 1), 1))
    root = jax.random.PRNGKey(int(config.seed))
    state = TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        opt_state=tx.init(params),
        rng=jax.random.fold_in(root, 1),
        model_state=model_state,
    )
    checkpointer = ckpt_lib.Checkpointer(os.path.join(workdir, "checkpoints"), async_save=False)
    try:
        checkpointer.save(0, state, extra={"source": "attn_jax.hf import"})
        checkpointer.wait()
    finally:
        checkpointer.close()


def import_checkpoint(
    src: str,
    workdir: str,
    *,
    family: str | None = None,
    tokenizer: str | None = None,
    experiment: str | None = None,
) -> dict:
    """Writes `workdir` (see the module docstring) from the HF checkpoint directory `src`.

    Args:
      src: config.json + model.safetensors (+ tokenizer.json for an LM).
      workdir: the run directory to create; it must not hold a run already.
      family: "lm", "mlm" or "vit"; None = from config.json's model_type.
      tokenizer: a tokenizer.json to use instead of the checkpoint's (LM).
      experiment: the experiment file for config.train/data (default experiments/<family>.py).

    Returns:
      The hf_import.json record.
    """
    if os.path.exists(os.path.join(workdir, "config.json")) or os.path.isdir(
        os.path.join(workdir, "checkpoints")
    ):
        raise MappingError(f"{workdir} holds a run already; import into a new directory.")
    model, fmt, ignored = hf_ckpt.load_model(src, family=family)
    config = experiment_config(fmt.family, experiment)
    cfg = model.config
    config.experiment = f"hf_{fmt.name}"
    config.model = ml_collections.ConfigDict({"family": fmt.family, **dataclasses.asdict(cfg)})
    os.makedirs(workdir, exist_ok=True)
    if fmt.family == "lm":
        _lm_data(config, src, workdir, cfg.vocab_size, tokenizer)
        config.train.seq_len = min(int(config.train.seq_len), cfg.max_len)
    elif tokenizer:
        raise MappingError(f"--tokenizer is for LM checkpoints; this is a {fmt.family} one.")
    write_state(model, config, workdir)
    record = {
        "source": os.path.abspath(src),
        "format": fmt.name,
        "architecture": fmt.architecture,
        "family": fmt.family,
        "hf_config": hf_ckpt.read_config(src),
        "ignored_tensors": ignored,
    }
    with open(os.path.join(workdir, "hf_import.json"), "w") as f:
        json.dump(record, f, indent=1, sort_keys=True)
    # config.json last: a workdir with one is a complete run directory
    with open(os.path.join(workdir, "config.json"), "w") as f:
        json.dump(config.to_dict(), f, indent=1, sort_keys=True)
    return record


def export_workdir(workdir: str, dst: str) -> dict:
    """Writes the run's latest checkpoint as an HF checkpoint directory; returns its config."""
    from attn_jax import generate

    config = generate.load_run_config(workdir)
    family = config.get("family", "lm")
    if family not in hf_ckpt.FAMILY_FORMATS:
        raise MappingError(
            f"{workdir} is a {family!r} run; export serves: {sorted(hf_ckpt.FAMILY_FORMATS)}."
        )
    model, _ = generate.restore_model(config, workdir)
    hf_config = hf_ckpt.save_model(model, dst)
    if family == "lm" and config.data.get("tokenizer") == "hf":
        shutil.copyfile(config.data.tokenizer_path, os.path.join(dst, TOKENIZER))
    return hf_config
