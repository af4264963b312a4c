"""Command line: Hugging Face checkpoints in and out of attn_jax run directories.

    python -m attn_jax.hf import --from DIR --workdir runs/gpt2 [--family lm]
        [--tokenizer tokenizer.json] [--experiment experiments/lm.py]
    python -m attn_jax.hf export --workdir runs/gpt2 --to DIR

import: DIR is what `save_pretrained` writes (config.json, model.safetensors,
for an LM its tokenizer.json); the workdir it leaves opens in
`python -m attn_jax.generate` and `analysis/attention.py` like a trained run's
(attn_jax.hf.workdir). export: a run's latest checkpoint (trained or imported)
as config.json + model.safetensors that `transformers` loads with
`from_pretrained(DIR)`. No torch is needed for either. Misuse (no config.json,
an unsupported model or option, a tensor no parameter takes) is one line on
stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m attn_jax.hf", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="HF checkpoint directory -> attn_jax workdir")
    imp.add_argument("--from", dest="src", required=True, help="config.json + model.safetensors")
    imp.add_argument("--workdir", required=True, help="the run directory to write (new)")
    imp.add_argument(
        "--family", choices=("lm", "mlm", "vit"), default=None, help="insist on a family"
    )
    imp.add_argument("--tokenizer", default=None, help="LM: a tokenizer.json to use instead")
    imp.add_argument(
        "--experiment",
        default=None,
        help="config.train/data from (default experiments/<family>.py)",
    )
    exp = sub.add_parser("export", help="attn_jax workdir -> HF checkpoint directory")
    exp.add_argument("--workdir", required=True, help="a run directory (config.json, checkpoints/)")
    exp.add_argument("--to", dest="dst", required=True, help="directory to write")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from absl import logging as absl_logging

    from attn_jax.generate import GenerateError
    from attn_jax.hf import workdir as workdir_lib
    from attn_jax.hf.mapping import MappingError

    absl_logging.set_verbosity(absl_logging.ERROR)  # orbax's informational lines
    try:
        if args.command == "import":
            record = workdir_lib.import_checkpoint(
                args.src,
                args.workdir,
                family=args.family,
                tokenizer=args.tokenizer,
                experiment=args.experiment,
            )
            print(
                f"imported {record['architecture']} ({record['family']}) into {args.workdir}"
                + (
                    f"; left out: {', '.join(record['ignored_tensors'])}"
                    if record["ignored_tensors"]
                    else ""
                )
            )
        else:
            hf_config = workdir_lib.export_workdir(args.workdir, args.dst)
            print(f"wrote {hf_config['architectures'][0]} to {args.dst}")
    except (MappingError, GenerateError, FileNotFoundError, ModuleNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
