"""`report.exponents`: the approaches agree or disagree only when two or more give a."""

from attn_jax.scaling import report


def _result(a1=None, a2=None, a3=None):
    def section(a):
        if a is None:
            return {"error": "not available"}
        return {"a": a, "bootstrap": {"summary": {"a": {"lo": a - 0.1, "hi": a + 0.1, "se": 0.05}}}}

    s3 = section(a3)
    return {
        "approach1": section(a1),
        "approach2": section(a2),
        "approach3": {k: v for k, v in s3.items() if k != "bootstrap"},
        "bootstrap": s3.get("bootstrap"),
    }


def test_one_approach_neither_agrees_nor_disagrees():
    # A smoke sweep (notebooks/attn_jax_colab.ipynb): Approaches 1 and 2 refuse, 3 fits.
    ex = report.exponents(_result(a3=0.5))
    assert ex["approach3"]["a"] == 0.5
    assert ex["agree"] is None
    assert ex["disagreements"] == []
    words = report._plain_words(
        {
            "approach3": {
                "diagnostics": {
                    "warnings": [],
                    "decades_N": 1,
                    "decades_D": 1,
                    "corr_alpha_beta": 0.0,
                }
            },
            "approach2": {},
            "exponents": ex,
        }
    )
    assert not any("agree" in w for w in words), words


def test_two_approaches_agree_or_disagree():
    assert report.exponents(_result(a2=0.5, a3=0.55))["agree"] is True
    ex = report.exponents(_result(a2=0.5, a3=0.8))
    assert ex["agree"] is False
    assert ex["disagreements"]
    assert report.exponents(_result())["agree"] is None
