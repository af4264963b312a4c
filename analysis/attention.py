"""Attention report of a trained run: per-head heatmaps, statistics and head types.

  python analysis/attention.py --workdir runs/lm_s --text "ROMEO: But soft" --out /tmp/att
      [--layers 0,3] [--heads 0,2] [--delimiters ".,:;"] [--max_tokens 128]

Restores the run's model from its workdir read-only (the same restore as
`python -m attn_jax.generate`), tokenizes --text with the run's tokenizer,
captures the attention weights (attn_jax.interp.run_with_cache) and writes to
--out: heatmaps.png and heatmaps.svg (one row per layer, one column per head,
token labels), attention.json (tokens, and per head its statistics and type,
with the thresholds of attn_jax.interp.measures), heads.csv and weights.npz
(the weights behind the figure). Serves LM runs for now. Misuse is one line on
stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

try:
    from attn_jax import generate
except ModuleNotFoundError:  # run as a script from a checkout: put the repo root on the path
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    from attn_jax import generate

FAMILIES = ("lm",)


def _ints(text: str | None):
    if not text:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints, got {text!r}") from None


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--workdir", required=True, help="a run directory (config.json, checkpoints/)")
    p.add_argument("--text", required=True, help="the input text")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--layers", type=_ints, default=None, help="layer indices, e.g. 0,3 (all)")
    p.add_argument("--heads", type=_ints, default=None, help="query heads, e.g. 0,2 (all)")
    p.add_argument("--delimiters", default="", help="characters whose mass is the delimiter score")
    p.add_argument("--max_tokens", type=int, default=128, help="truncate the text to this many")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)  # orbax warns that read_only is read-only
    try:
        config = generate.load_run_config(args.workdir)
        family = config.get("family", "lm")
        if family not in FAMILIES:
            raise generate.GenerateError(
                f"{args.workdir} is a {family!r} run; analysis/attention.py serves: "
                f"{', '.join(FAMILIES)} (for now)."
            )
        from attn_jax.data.tokenizers import get_tokenizer
        from attn_jax.interp import report

        model, step = generate.restore_model(config, args.workdir)
        max_len = min(args.max_tokens, int(config.model.get("max_len", 0) or args.max_tokens))
        record = report.lm_report(
            model,
            get_tokenizer(config.data),
            args.text,
            args.out,
            layers=args.layers,
            heads=args.heads,
            delimiters=args.delimiters,
            max_len=max_len,
            meta={
                "workdir": str(args.workdir),
                "step": int(step),
                "family": family,
                "title": f"{args.workdir} (step {step})",
            },
        )
    except (generate.GenerateError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    counts = {}
    for h in record["heads"]:
        counts[h["type"]] = counts.get(h["type"], 0) + 1
    print(f"{len(record['tokens'])} tokens, {len(record['heads'])} heads: {counts}")
    print(f"wrote {args.out}/" + ", ".join([*record["files"]["figures"], "attention.json"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
