"""attn_jax.generate: text from a trained run's checkpoint, for an LM and a seq2seq run."""

import json
import os

import jax
import numpy as np
import pytest

from attn_jax import configs, generate
from attn_jax.data.pairs import load_pair_data
from attn_jax.data.tokenizers import ByteTokenizer
from attn_jax.families import seq2seq as s2s
from attn_jax.models import generate as lm_generate
from attn_jax.train.loop import train_and_evaluate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUIET = {
    "train.progress_bar": False,
    "train.tensorboard": False,
    "train.report_mfu": False,
    "train.num_devices": 1,
    "train.checkpoint_every": 0,  # one checkpoint, at the end
}


@pytest.fixture(scope="module", autouse=True)
def _fast_compile():
    """XLA's optimizations off: these runs compile many small graphs once each."""
    prev = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", prev)


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    config = configs.load_config(os.path.join(REPO, "experiments/lm.py:smoke"))
    config = configs.apply_overrides(
        config, {**QUIET, "train.steps": 2, "train.eval_at_tokens": (), "train.warmup_steps": 1}
    )
    workdir = str(tmp_path_factory.mktemp("lm"))
    assert train_and_evaluate(config, workdir)["status"] == "done"
    return workdir


@pytest.fixture(scope="module")
def seq2seq_run(tmp_path_factory):
    config = s2s.base_config(
        "toy",
        "toy",
        model=dict(vocab_size=13, max_len=16),
        data_fields=dict(max_src_len=6, max_tgt_len=6, toy_sizes=(64, 16, 16)),
        batch_size=16,
        steps=2,
        warmup_steps=1,
        **{k.split(".")[1]: v for k, v in QUIET.items()},
    )
    workdir = str(tmp_path_factory.mktemp("seq2seq"))
    assert train_and_evaluate(config, workdir)["status"] == "done"
    return workdir


def _run(capsys, *argv):
    code = generate.main(list(argv))
    out = capsys.readouterr()
    return code, out.out.rstrip("\n"), out.err


def test_lm_greedy_continuation_equals_generate_on_the_checkpoint(lm_run, capsys):
    code, text, _ = _run(
        capsys,
        "--workdir",
        lm_run,
        "--prompt",
        "ROMEO:",
        "--max_new_tokens",
        "6",
        "--temperature",
        "0",
    )
    assert code == 0
    config = generate.load_run_config(lm_run)
    model, step = generate.restore_model(config, lm_run)
    assert step == 2
    prompt = ByteTokenizer().encode("ROMEO:").astype(np.int32)[None]
    out = lm_generate(model, prompt, 6, rng=jax.random.key(0), temperature=0.0)
    assert text == "ROMEO:" + ByteTokenizer().decode(np.asarray(out)[0, 6:])
    code, text, _ = _run(capsys, "--workdir", lm_run, "--prompt", "A", "--max_new_tokens", "8")
    assert code == 0
    prompt = ByteTokenizer().encode("A").astype(np.int32)[None]
    out = lm_generate(model, prompt, 8, rng=jax.random.key(0), temperature=0.8, top_k=40)
    assert text == "A" + ByteTokenizer().decode(np.asarray(out)[0, 1:])  # --seed 0


def test_seq2seq_greedy_and_beam_decode_the_source(seq2seq_run, capsys):
    code, text, _ = _run(capsys, "--workdir", seq2seq_run, "--source", "1234", "--beam", "1")
    assert code == 0
    config = generate.load_run_config(seq2seq_run)
    model, _ = generate.restore_model(config, seq2seq_run)
    tokenizer = load_pair_data(config.data).tokenizer
    (want,) = s2s.decode_texts(model, tokenizer, ["1234"], max_src_len=6, max_len=7)
    assert text == want
    assert set(text) <= set("0123456789")
    code, text, _ = _run(capsys, "--workdir", seq2seq_run, "--source", "1234", "--beam", "3")
    assert code == 0
    assert set(text) <= set("0123456789")


def test_usage_errors_are_one_line(lm_run, seq2seq_run, tmp_path, capsys):
    cases = [
        (["--workdir", str(tmp_path), "--prompt", "x"], "no config.json"),
        (["--workdir", seq2seq_run, "--prompt", "x"], "--prompt is for LM runs"),
        (["--workdir", lm_run, "--source", "x"], "--source is for seq2seq runs"),
        (["--workdir", lm_run], "needs --prompt"),
        (["--workdir", seq2seq_run, "--source", "12", "--beam", "0"], "--beam must be >= 1"),
        (["--workdir", seq2seq_run, "--source", "abc"], "cannot be tokenized"),
    ]
    with open(os.path.join(lm_run, "config.json")) as f:
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "config.json").write_text(json.dumps(json.load(f)))
    cases.append((["--workdir", str(tmp_path / "empty"), "--prompt", "x"], "No checkpoint"))
    for argv, message in cases:
        code, out, err = _run(capsys, *argv)
        assert code == 2, (argv, out, err)
        assert message in err, (argv, err)
        assert err.count("\n") == 1, err
