"""analysis/attention.py on MLM and seq2seq (SCAN) runs: self, causal and cross-attention reports."""

import csv
import json
import os

import numpy as np
import pytest
from interp_helpers import QUIET, REPO, load_script

from attn_jax import configs, generate
from attn_jax.data import scan
from attn_jax.families import seq2seq as s2s
from attn_jax.interp import report
from attn_jax.train.loop import train_and_evaluate

FILES = ("heatmaps.png", "heatmaps.svg", "heads.csv", "weights.npz", "attention.html")


def _cli():
    return load_script("attention")


def _train(tmp_path_factory, name: str, overrides: dict) -> str:
    config = configs.load_config(os.path.join(REPO, f"experiments/{name}.py:smoke"))
    config = configs.apply_overrides(
        config, {**QUIET, "train.steps": 2, "train.warmup_steps": 1, **overrides}
    )
    workdir = str(tmp_path_factory.mktemp(name))
    assert train_and_evaluate(config, workdir)["status"] == "done"
    return workdir


@pytest.fixture(scope="module")
def mlm_run(tmp_path_factory):
    return _train(tmp_path_factory, "mlm", {"train.eval_at_tokens": ()})


@pytest.fixture(scope="module")
def scan_run(tmp_path_factory):
    return _train(tmp_path_factory, "scan", {"data.decode_examples": 4})


def _report(argv, out):
    assert _cli().main([*argv, "--out", str(out)]) == 0
    for name in FILES:
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    with open(os.path.join(out, "attention.json")) as f:
        return json.load(f), np.load(os.path.join(out, "weights.npz"))


def test_mlm_report_is_bidirectional(mlm_run, tmp_path):
    text = "To be, or not"
    record, weights = _report(["--workdir", mlm_run, "--text", text], tmp_path)
    tokens = ["[CLS]", *text, "[SEP]"]
    T = len(tokens)
    assert record["tokens"] == tokens
    layers = record["layers"]
    assert layers
    assert all(record["layer_info"][k]["kind"] == "self" for k in layers)
    assert not any(record["layer_info"][k]["causal"] for k in layers)
    w_NTS = weights[layers[0]]
    assert w_NTS.shape[1:] == (T, T)
    assert np.triu(w_NTS[0], 1).sum() > 0.1  # queries see later keys
    head0 = next(h for h in record["heads"] if h["layer"] == layers[0] and h["head"] == 0)
    # Non-causal statistics: a next-token score, and entropy normalized by log T on every row.
    w = w_NTS[0].astype(np.float64)
    np.testing.assert_allclose(head0["stats"]["next_token"], np.diag(w, 1).mean(), rtol=1e-5)
    row_h = -(w * np.log(np.where(w > 0, w, 1.0))).sum(-1)
    np.testing.assert_allclose(
        head0["stats"]["normalized_entropy"], (row_h / np.log(T)).mean(), rtol=1e-5
    )


def test_write_report_of_a_cross_layer(tmp_path):
    """A hand-built cross layer: 2 target rows x 3 source keys, head 0 on key 0, head 1 uniform."""
    cross_1nTS = np.stack([np.tile([1.0, 0.0, 0.0], (2, 1)), np.full((2, 3), 1 / 3)])[None]
    self_1nTT = np.stack([np.eye(2), np.eye(2)])[None]
    info = {"dec.cross": {"tokens": ["a", "b"], "key_tokens": ["x", "y", "z"], "kind": "cross"}}
    weights = {"dec.cross.weights": cross_1nTS, "dec.self.weights": self_1nTT}
    record = report.write_report(weights, ["a", "b"], str(tmp_path), causal=True, layer_info=info)
    assert record["layer_info"]["dec.cross"] == {**info["dec.cross"], "causal": False}
    assert record["layer_info"]["dec.self"]["causal"]
    heads = {(h["layer"], h["head"]): h for h in record["heads"]}
    sink, uniform = heads[("dec.cross", 0)], heads[("dec.cross", 1)]
    assert (sink["type"], sink["stats"]["first_token"]) == ("sink", 1.0)
    assert uniform["type"] == "broad"
    assert uniform["stats"]["normalized_entropy"] == pytest.approx(1.0)
    for name in report.POSITIONAL_STATS:
        assert sink["stats"][name] is None
    assert heads[("dec.self", 0)]["stats"]["diagonal"] == 1.0
    assert np.load(tmp_path / "weights.npz")["dec.cross"].shape == (2, 2, 3)
    with pytest.raises(ValueError, match=r"need \[1, n, 2, 3\]"):
        report.write_report(
            {"dec.cross.weights": self_1nTT},
            ["a", "b"],
            str(tmp_path),
            causal=True,
            layer_info=info,
        )


def _actions(words: str) -> str:
    return " ".join(scan.VERBS[w] for w in words.split())


def test_seq2seq_report_has_cross_attention(scan_run, tmp_path):
    source, target = "jump twice and walk", _actions("jump jump walk")
    argv = ["--workdir", scan_run, "--text", source, "--target", target]
    record, weights = _report(argv, tmp_path)
    src_tokens = [*source.split(), "</s>"]
    tgt_tokens = ["<s>", *target.split()]
    S, T = len(src_tokens), len(tgt_tokens)
    info = record["layer_info"]
    cross = [k for k in record["layers"] if info[k]["kind"] == "cross"]
    config = generate.load_run_config(scan_run)
    assert cross == [f"decoder.{i}.cross_attn" for i in range(int(config.model.dec_layers))]
    for k in cross:
        assert info[k]["tokens"] == tgt_tokens
        assert info[k]["key_tokens"] == src_tokens
        w_NTS = weights[k]
        assert w_NTS.shape[1:] == (T, S)
        np.testing.assert_allclose(w_NTS.sum(-1), 1.0, rtol=1e-5)
    assert info["encoder.0.attn"] == {
        "tokens": src_tokens,
        "key_tokens": src_tokens,
        "kind": "self",
        "causal": False,
    }
    assert info["decoder.0.attn"]["causal"]
    assert info["decoder.0.attn"]["tokens"] == tgt_tokens
    assert np.triu(weights["decoder.0.attn"], 1).max() == 0.0  # causal decoder
    assert np.triu(weights["encoder.0.attn"], 1).sum() > 0.1  # bidirectional encoder
    by_layer = {(h["layer"], h["head"]): h for h in record["heads"]}
    cross_stats = by_layer[(cross[0], 0)]["stats"]
    assert cross_stats["previous_token"] is None
    assert cross_stats["mean_distance"] is None
    assert cross_stats["entropy"] > 0
    assert cross_stats["first_token"] is not None
    assert "next_token" in by_layer[("encoder.0.attn", 0)]["stats"]
    assert "next_token" not in by_layer[("decoder.0.attn", 0)]["stats"]
    # the alignment figure and its data: the head mean of each cross layer
    for ext in ("png", "svg"):
        assert os.path.getsize(tmp_path / f"cross_alignment.{ext}") > 0
    with open(tmp_path / "cross_alignment.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(cross) * T * S
    mine = {(r["layer"], int(r["t"]), int(r["s"])): float(r["weight"]) for r in rows}
    mean_TS = weights[cross[-1]].mean(0)
    assert mine[(cross[-1], T - 1, S - 1)] == pytest.approx(mean_TS[T - 1, S - 1], abs=1e-6)
    assert rows[T * S - 1]["target_predicts"] == "</s>"


def test_seq2seq_target_defaults_to_greedy(scan_run, tmp_path):
    source = "walk left"
    record, weights = _report(["--workdir", scan_run, "--text", source], tmp_path)
    config = generate.load_run_config(scan_run)
    model, _ = generate.restore_model(config, scan_run)
    (greedy,) = s2s.decode_texts(
        model,
        scan.WordTokenizer(),
        [source],
        max_src_len=int(config.data.max_src_len),
        max_len=int(config.decode.max_len),
        batch_size=1,
    )
    assert record["target"] == greedy
    assert record["target_source"] == "greedy decode"
    T = 1 + len(greedy.split())
    assert weights["decoder.0.cross_attn"].shape[1:] == (T, 3)


def test_usage_errors(mlm_run, scan_run, tmp_path, capsys):
    cli = _cli()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"family": "no_such_family"}))
    assert cli.main(["--workdir", str(bad), "--text", "x y", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "'no_such_family' run" in err
    assert "seq2seq" in err
    argv = ["--workdir", mlm_run, "--text", "x y", "--target", "z", "--out", str(tmp_path / "o")]
    assert cli.main(argv) == 2
    assert "--target is for seq2seq runs" in capsys.readouterr().err
    argv = ["--workdir", scan_run, "--text", "fly away", "--out", str(tmp_path / "o")]
    assert cli.main(argv) == 2
    assert "cannot be tokenized" in capsys.readouterr().err
    assert cli.main(["--workdir", scan_run, "--out", str(tmp_path / "o")]) == 2
    assert "needs --text" in capsys.readouterr().err
