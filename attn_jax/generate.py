"""Command line: text from a trained run's latest checkpoint (an LM or a seq2seq run).

    python -m attn_jax.generate --workdir runs/lm_s --prompt "ROMEO:" \
        [--max_new_tokens 200 --temperature 0.8 --top_k 40 --seed 0]
    python -m attn_jax.generate --workdir runs/translate_s --source "In the beginning" \
        [--beam 4 --length_penalty 0.6]          # --beam 1: greedy

The run's config.json says what to build: the model through
`attn_jax.families.get_family(config).model`, with the latest checkpoint's
parameters restored read-only (`Checkpointer(read_only=True)`: nothing in the
workdir is written or moved). An LM samples through its KV cache
(`attn_jax.models.generate`) and decodes with the run's tokenizer (bytes, or
the sentencepiece model the run trained, cached under the data root); a
seq2seq run decodes `--source` with beam search or greedily
(`attn_jax.models.decode`) and the pair data's tokenizer. Misuse (no
checkpoint, --prompt for a seq2seq run, ...) is one line on stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence


class GenerateError(ValueError):
    """A usage error, reported as one line."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m attn_jax.generate", description=__doc__.split("\n")[0]
    )
    p.add_argument("--workdir", required=True, help="a run directory (config.json, checkpoints/)")
    p.add_argument("--prompt", help="LM runs: the text to continue")
    p.add_argument("--source", help="seq2seq runs: the source text to decode")
    p.add_argument("--max_new_tokens", type=int, default=200, help="LM: tokens to sample")
    p.add_argument("--temperature", type=float, default=0.8, help="LM: 0 = greedy")
    p.add_argument(
        "--top_k", type=int, default=40, help="LM: sample among the k likeliest (0 = all)"
    )
    p.add_argument("--seed", type=int, default=0, help="LM: sampling seed")
    p.add_argument("--beam", type=int, default=4, help="seq2seq: beam size (1 = greedy)")
    p.add_argument("--length_penalty", type=float, default=0.6, help="seq2seq: GNMT alpha")
    p.add_argument(
        "--max_len", type=int, default=0, help="seq2seq: most output tokens (0 = max_tgt_len + 1)"
    )
    return p


def load_run_config(workdir: str):
    """The run's config.json as a ConfigDict; GenerateError when there is none."""
    import ml_collections

    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        raise GenerateError(
            f"{workdir} has no config.json: not a run directory (train one with "
            "python -m attn_jax.main --config ... --workdir ...)."
        )
    with open(path) as f:
        return ml_collections.ConfigDict(json.load(f))


def _abstract_state(family, config):
    """(graphdef, TrainState to restore into), shapes only where the checkpoint has values.

    A checkpoint is one tree (step, params, optimizer state, rng), so the restore
    target needs the optimizer state's shapes too; `eval_shape` gives them, and
    the parameters', without allocating or compiling anything. Only a model with
    non-trained state (e.g. Performer features: not checkpointed) is built for
    real, as `create_train_state` builds it, so that state is the run's own.
    """
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from attn_jax.train import optim
    from attn_jax.train.state import TrainState, split_model

    root = jax.random.PRNGKey(int(config.seed))

    def build():
        return family.model(nnx.Rngs(params=jax.random.fold_in(root, 0), dropout=root))

    graphdef, params, model_state = split_model(nnx.eval_shape(build))
    if jax.tree.leaves(model_state):
        _, _, model_state = split_model(build())
    tx, _ = optim.make_optimizer(config.train, max(int(config.train.get("steps", 1) or 1), 1))
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])

    def placed(tree):
        return jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree
        )

    state = TrainState(
        step=jnp.zeros((), jnp.int32),
        params=placed(params),
        opt_state=placed(jax.eval_shape(tx.init, params)),
        rng=jax.random.fold_in(root, 1),
        model_state=model_state,
    )
    return graphdef, state


def restore_model(config, workdir: str):
    """(model, step): the family's model with the latest checkpoint's params, read-only."""
    from flax import nnx

    from attn_jax import families
    from attn_jax.train import checkpoint as ckpt_lib

    directory = os.path.join(workdir, "checkpoints")
    step = None
    if os.path.isdir(directory):
        checkpointer = ckpt_lib.Checkpointer(directory, read_only=True, async_save=False)
        step = checkpointer.latest_step()
        if step is None:
            checkpointer.close()
    if step is None:
        raise GenerateError(
            f"No checkpoint in {directory}: train the run first (or until its first "
            "checkpoint: train.checkpoint_every)."
        )
    try:
        graphdef, state = _abstract_state(families.get_family(config), config)
        state, _ = checkpointer.restore_step(step, state)
    finally:
        checkpointer.close()
    return nnx.merge(graphdef, state.params, state.model_state), step


def _lm_text(args, config, model) -> str:
    import jax
    import numpy as np

    from attn_jax.data.tokenizers import get_tokenizer
    from attn_jax.models import generate

    tokenizer = get_tokenizer(config.data)
    ids = np.asarray(tokenizer.encode(args.prompt), np.int32)
    if not len(ids):
        raise GenerateError("--prompt is empty after tokenization; give at least one character.")
    limit = int(config.model.get("max_len", 0) or 0)
    if config.model.get("position") == "learned" and len(ids) + args.max_new_tokens > limit:
        raise GenerateError(
            f"prompt ({len(ids)} tokens) + --max_new_tokens {args.max_new_tokens} exceeds the "
            f"model's max_len {limit} (learned positions); ask for fewer tokens."
        )
    out = generate(
        model,
        ids[None],
        args.max_new_tokens,
        rng=jax.random.key(args.seed),
        temperature=args.temperature,
        top_k=args.top_k,
    )
    return args.prompt + tokenizer.decode(np.asarray(out)[0, len(ids) :])


def _seq2seq_text(args, config, model) -> str:
    from attn_jax.data.pairs import load_pair_data
    from attn_jax.families import seq2seq as s2s

    tokenizer = load_pair_data(config.data).tokenizer
    try:
        tokenizer.encode(args.source)
    except ValueError as err:
        raise GenerateError(f"--source cannot be tokenized: {err}") from None
    (text,) = s2s.decode_texts(
        model,
        tokenizer,
        [args.source],
        max_src_len=int(config.data.max_src_len),
        max_len=int(args.max_len or int(config.data.max_tgt_len) + 1),
        beam_size=args.beam,
        length_penalty=args.length_penalty,
        batch_size=1,
    )
    return text


GENERATORS = {"lm": _lm_text, "seq2seq": _seq2seq_text}


def _check_args(family: str, args: argparse.Namespace) -> None:
    """Usage errors that need no model: checked before anything is restored."""
    if family == "lm":
        if args.source is not None:
            raise GenerateError("--source is for seq2seq runs; this is an LM run: pass --prompt.")
        if args.prompt is None:
            raise GenerateError("An LM run needs --prompt TEXT (the text to continue).")
        if args.max_new_tokens < 1:
            raise GenerateError(f"--max_new_tokens must be >= 1, got {args.max_new_tokens}.")
    else:
        if args.prompt is not None:
            raise GenerateError("--prompt is for LM runs; this is a seq2seq run: pass --source.")
        if args.source is None:
            raise GenerateError("A seq2seq run needs --source TEXT (the text to decode).")
        if args.beam < 1:
            raise GenerateError(f"--beam must be >= 1 (1 = greedy), got {args.beam}.")


def generate_text(args: argparse.Namespace) -> str:
    """The text `args` ask for (see the module docstring); GenerateError on misuse."""
    config = load_run_config(args.workdir)
    family = config.get("family", "lm")
    if family not in GENERATORS:
        raise GenerateError(
            f"{args.workdir} is a {family!r} run; generate serves: {', '.join(GENERATORS)}."
        )
    _check_args(family, args)
    model, _ = restore_model(config, args.workdir)
    return GENERATORS[family](args, config, model)


def main(argv: Sequence[str] | None = None) -> int:
    """Prints the generated text; usage errors are one line on stderr and exit code 2."""
    args = _parser().parse_args(argv)
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)  # orbax warns that read_only is read-only
    try:
        text = generate_text(args)
    except GenerateError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
