"""`python -m attn_jax.hf import|export`: the workdir opens in generate and analysis/attention.py."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from hf_helpers import GPT2, build, param_arrays

from attn_jax import configs, generate, hf
from attn_jax.hf import __main__ as cli

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _attention_script():
    module = configs.import_file(os.path.join(REPO, "analysis", "attention.py"))
    return module


@pytest.fixture(scope="module")
def byte_gpt2(tmp_path_factory):
    """A GPT-2 checkpoint directory of vocabulary 256 (bytes: no tokenizer file needed)."""
    fmt = hf.FORMATS["gpt2"]
    model = build(fmt, fmt.from_hf_config({**GPT2, "vocab_size": 256, "n_positions": 64}), seed=5)
    src = str(tmp_path_factory.mktemp("gpt2"))
    hf.save_model(model, src)
    return src, model


def test_import_leaves_a_workdir_generate_and_attention_open(byte_gpt2, tmp_path, capsys):
    src, model = byte_gpt2
    workdir = str(tmp_path / "run")
    assert cli.main(["import", "--from", src, "--family", "lm", "--workdir", workdir]) == 0
    assert "imported GPT2LMHeadModel (lm)" in capsys.readouterr().out
    config = generate.load_run_config(workdir)
    assert config.family == "lm"
    assert config.data.tokenizer == "byte"
    restored, step = generate.restore_model(config, workdir)
    assert step == 0
    want = param_arrays(model)
    for k, v in param_arrays(restored).items():
        np.testing.assert_array_equal(v, want[k], err_msg=k)
    # greedy decoding from the workdir = greedy decoding of the model itself
    argv = ["--workdir", workdir, "--prompt", "To be", "--max_new_tokens", "5"]
    assert generate.main([*argv, "--temperature", "0"]) == 0
    text = capsys.readouterr().out.rstrip("\n")
    from attn_jax.models.generate import generate as sample

    ids = np.frombuffer(b"To be", np.uint8).astype(np.int32)[None]
    out = np.asarray(sample(model, ids, 5, rng=jax.random.key(0), temperature=0.0))[0, 5:]
    assert text == "To be" + bytes(out.astype(np.uint8)).decode("utf-8", errors="replace")
    out_dir = str(tmp_path / "att")
    argv = ["--workdir", workdir, "--text", "To be, or not", "--out", out_dir]
    assert _attention_script().main(argv) == 0
    with open(os.path.join(out_dir, "attention.json")) as f:
        assert len(json.load(f)["heads"]) == 3 * 6
    # export the workdir: the same checkpoint files come back
    dst = str(tmp_path / "back")
    assert cli.main(["export", "--workdir", workdir, "--to", dst]) == 0
    back, _, _ = hf.load_model(dst)
    for k, v in param_arrays(back).items():
        np.testing.assert_array_equal(v, want[k], err_msg=k)


def test_usage_errors_are_one_line(byte_gpt2, tmp_path, capsys):
    src, _ = byte_gpt2
    workdir = str(tmp_path / "run")
    assert cli.main(["import", "--from", str(tmp_path), "--workdir", workdir]) == 2
    assert "has no config.json" in capsys.readouterr().err
    assert cli.main(["import", "--from", src, "--family", "vit", "--workdir", workdir]) == 2
    assert "--family vit does not fit model_type 'gpt2'" in capsys.readouterr().err
    assert not os.path.exists(workdir)
    assert cli.main(["import", "--from", src, "--workdir", workdir]) == 0
    capsys.readouterr()
    assert cli.main(["import", "--from", src, "--workdir", workdir]) == 2
    assert "holds a run already" in capsys.readouterr().err


@pytest.mark.slow
def test_documented_command_with_a_tokenizer_json(tmp_path):
    """The README's command as a subprocess, on a vocabulary-1000 GPT-2 with its tokenizer.json."""
    try:
        from tokenizers import Tokenizer, models, pre_tokenizers, trainers
        from tokenizers import decoders as tok_decoders
    except ModuleNotFoundError:
        pytest.fail("tokenizers is missing: pip install -e '.[hf]' (make test-all does)")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tok_decoders.ByteLevel()
    text = ["To be, or not to be, that is the question."] * 50 + ["Whether 'tis nobler"] * 50
    trainer = trainers.BpeTrainer(
        vocab_size=1000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(text, trainer)
    fmt = hf.FORMATS["gpt2"]
    model = build(fmt, fmt.from_hf_config({**GPT2, "n_positions": 64}), seed=1)
    src = str(tmp_path / "gpt2")
    hf.save_model(model, src)
    tok.save(os.path.join(src, "tokenizer.json"))
    workdir = str(tmp_path / "runs" / "gpt2")
    env = {**os.environ, "ATTN_JAX_NO_REEXEC": "1", "JAX_PLATFORMS": "cpu"}

    def run(*argv):
        proc = subprocess.run(
            [sys.executable, *argv], capture_output=True, text=True, env=env, cwd=REPO, check=False
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    run("-m", "attn_jax.hf", "import", "--from", src, "--family", "lm", "--workdir", workdir)
    config = generate.load_run_config(workdir)
    assert config.data.tokenizer == "hf"
    out = run(
        "-m",
        "attn_jax.generate",
        "--workdir",
        workdir,
        "--prompt",
        "To be",
        "--max_new_tokens",
        "4",
    )
    assert out.startswith("To be")
    run(
        "analysis/attention.py",
        "--workdir",
        workdir,
        "--text",
        "To be, or not",
        "--out",
        str(tmp_path / "att"),
    )
    with open(tmp_path / "att" / "attention.json") as f:
        record = json.load(f)
    assert record["tokens"] == [tok.decode([i]) for i in tok.encode("To be, or not").ids]
