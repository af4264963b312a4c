"""The word-for-word dictionary baseline of the English-Spanish Bible task: BLEU and chrF.

  python analysis/translate_baseline.py                  # English -> Spanish, test books
  python analysis/translate_baseline.py --direction es-en --split validation

An IBM Model 1 dictionary (attn_jax.data.bible.ibm1, 5 EM iterations) is learned from
the training books' verse pairs; each held-out verse is translated word by word, and
the output is scored with sacrebleu (corpus BLEU, chrF) against the real translation.
A copy baseline (the source verse as the hypothesis) is printed beside it. Needs
`make data` (the two SWORD packages).

Measured 2026-12-02 (2-core AMD EPYC CPU, load average 8.0), English -> Spanish, the
2,006 verses of the test books (Joshua, Proverbs, Romans), 51 s wall:

    dictionary (IBM Model 1): BLEU 13.08  chrF 44.08   (12,069 dictionary entries)
    copy source:              BLEU 0.12  chrF 17.81

The Transformer of experiments/translate.py is compared with it there.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

try:
    from attn_jax.data import bible
except ModuleNotFoundError:  # run as a script from a checkout: put the repo root on the path
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    from attn_jax.data import bible


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--direction", choices=sorted(bible.DIRECTIONS), default="en-es")
    p.add_argument("--split", choices=["validation", "test"], default="test")
    p.add_argument("--iterations", type=int, default=5, help="Model 1 EM iterations")
    p.add_argument("--data_dir", default="", help="data root (default: .data in the repo)")
    args = p.parse_args(argv)
    from attn_jax.data import sources

    start = time.perf_counter()
    m = bible.dictionary_baseline(
        sources.data_root(args.data_dir), args.direction, args.split, args.iterations
    )
    print(
        f"{args.direction} {args.split} ({int(m['verses'])} verses, "
        f"{int(m['dictionary_size'])} dictionary entries, {time.perf_counter() - start:.0f} s)"
    )
    print(f"dictionary (IBM Model 1): BLEU {m['bleu']:.2f}  chrF {m['chrf']:.2f}")
    print(f"copy source:              BLEU {m['copy_bleu']:.2f}  chrF {m['copy_chrf']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
