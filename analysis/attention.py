"""Attention report of a trained run: per-head heatmaps, statistics, head types, a viewer.

  python analysis/attention.py --workdir runs/lm_s --text "ROMEO: But soft" --out /tmp/att
      [--layers 0,3] [--heads 0,2] [--delimiters ".,:;"] [--max_tokens 128]
  python analysis/attention.py --workdir runs/mlm --text "To be, or not to be" --out /tmp/att
  python analysis/attention.py --workdir runs/scan --text "jump twice and walk left" \
      --out /tmp/att [--target "I_JUMP I_JUMP I_TURN_LEFT I_WALK"]   # default: greedy decode
  python analysis/attention.py --workdir runs/vit --image_index 4 --out /tmp/att
  python analysis/attention.py --workdir runs/vqa/both --image_index 2 \
      --question "is there a blue shape?" --out /tmp/att

Restores the run's model from its workdir read-only (the same restore as
`python -m attn_jax.generate`), captures the attention weights of one input
(attn_jax.interp.run_with_cache) and writes to --out: heatmaps.png and
heatmaps.svg (one row per layer, one column per head, token labels),
attention.json (tokens, per layer its query/key tokens, kind and causality, and
per head its statistics and type, with the thresholds of
attn_jax.interp.measures), heads.csv, weights.npz (the weights behind the
figure) and attention.html (attn_jax.interp.html: one self-contained page to
browse layers and heads). Families (FAMILIES; the front ends are in
attn_jax.interp.text_reports):
  lm       causal self-attention over --text.
  mlm      the bidirectional encoder over [CLS] --text [SEP].
  seq2seq  translation and SCAN runs: --text is the source, --target the target
           (default: the model's greedy decode); encoder self, decoder self
           (causal) and decoder -> encoder cross-attention, plus
           cross_alignment.png/.svg/.csv (per decoder layer the head-mean target
           x source matrix).
  vit      test image --image_index: rollout and per-layer [CLS] overlays, mean
           attention distance by depth and head over 256 test images (fig. 7 of
           Dosovitskiy et al. 2021); the viewer's report in self_attention/.
  vqa      test image --image_index and --question (default: its first test
           question): per question word and fusion layer, the cross-attention over
           the patches as an overlay, and the weight left on the context registers;
           every layer (image, question, cross) for the viewer in layers/.
  clip     test image --image_index: the image tower's rollout; the caption's
           (--question, default its shape-colour caption) self-attention.
  (the vision front end is attn_jax.interp.vision_report)
Misuse is one line on stderr and exit code 2.

Adding a family: a function report(config, model, step, args) -> record that
writes the report to args.out (see attn_jax.interp.text_reports), an entry in
FAMILIES, and its own options in OPTIONS (flag -> (argparse kwargs, families)).
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
from attn_jax.interp import text_reports


def vision(config, model, step, args) -> dict:
    """The ViT / VQA / CLIP report (attn_jax.interp.vision_report.run)."""
    from attn_jax.interp import vision_report

    if args.text is not None:
        raise ValueError(f"A {config.family} run takes --image_index (and --question), not --text.")
    return vision_report.run(
        config,
        model,
        step,
        args.out,
        index=args.image_index,
        question=args.question,
        layers=args.layers,
        heads=args.heads,
    )


# config.family -> report(config, model, step, args) -> the attention.json record.
FAMILIES = {
    "lm": text_reports.lm,
    "mlm": text_reports.mlm,
    "seq2seq": text_reports.seq2seq,
    "vit": vision,
    "vqa": vision,
    "clip": vision,
}
# Family-specific options: flag -> (argparse kwargs, the families that read it).
# Passing one to another family's run is a usage error.
OPTIONS = {
    "--target": (
        dict(default=None, help="seq2seq: the target text (default: the greedy decode)"),
        ("seq2seq",),
    ),
    "--image_index": (
        dict(type=int, default=0, help="vit/vqa/clip: a test-split image (default 0)"),
        ("vit", "vqa", "clip"),
    ),
    "--question": (
        dict(default=None, help="vqa: the question; clip: the caption (default: the image's)"),
        ("vqa", "clip"),
    ),
}


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
    p.add_argument("--text", default=None, help="the input text (seq2seq: the source)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--layers", type=_ints, default=None, help="layer indices, e.g. 0,3 (all)")
    p.add_argument("--heads", type=_ints, default=None, help="query heads, e.g. 0,2 (all)")
    p.add_argument("--delimiters", default="", help="characters whose mass is the delimiter score")
    p.add_argument("--max_tokens", type=int, default=128, help="truncate the text to this many")
    for flag, (kwargs, _) in OPTIONS.items():
        p.add_argument(flag, **kwargs)
    return p.parse_args(argv)


def _check_options(args, family: str) -> None:
    """A family-specific option given to a run of another family: a GenerateError."""
    for flag, (kwargs, families) in OPTIONS.items():
        value = getattr(args, flag.lstrip("-"))
        if family not in families and value != kwargs.get("default"):
            raise generate.GenerateError(
                f"{flag} is for {', '.join(families)} runs; this is a {family!r} run."
            )


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
        _check_options(args, family)
        from attn_jax.interp import html

        model, step = generate.restore_model(config, args.workdir)
        record = FAMILIES[family](config, model, step, args)
        report_dir = pathlib.Path(args.out, record.get("report_dir", ""))
        page = html.write_html(report_dir)
    except (generate.GenerateError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if "report_dir" in record:  # a vision report: its own record, the viewer's in report_dir
        print(f"prediction {record.get('prediction')!r}, truth {record.get('truth')!r}")
        files = [*record["files"], "attention.json", str(page.relative_to(args.out))]
    else:
        counts = {}
        for h in record["heads"]:
            counts[h["type"]] = counts.get(h["type"], 0) + 1
        print(f"{len(record['tokens'])} tokens, {len(record['heads'])} heads: {counts}")
        if "target" in record:
            print(f"target ({record.get('target_source')}): {record['target']}")
        files = [*record["files"]["figures"], "attention.json", page.name]
    print(f"wrote {args.out}/" + ", ".join(files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
