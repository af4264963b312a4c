"""Errors before work: every registry choice is checked when a config is resolved.

A mistyped choice must fail naming the field and every valid key, from
`load_config`, `apply_overrides`, the command line and `train_and_evaluate`,
before a corpus is built, a tokenizer trained or a workdir created.
"""

import dataclasses
import os
import re
import subprocess
import sys

import ml_collections
import pytest

from attn_jax import configs, validate
from attn_jax.data import builders, pipeline, tokenizers
from attn_jax.families import FAMILIES
from attn_jax.models import SIZES
from attn_jax.models.lm import DTYPE_NAMES, LM_POSITIONS
from attn_jax.nn.block import NORM_PLACEMENTS
from attn_jax.nn.norm import NORM_TYPES
from attn_jax.ops.kernels import KERNELS
from attn_jax.ops.scores import SCORES
from attn_jax.train import optim

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LM = os.path.join(REPO, "experiments/lm.py")

# field -> (a typo, the registry whose keys the message must list)
TYPOS = {
    "model.kernel": ("flsh", KERNELS),
    "model.score": ("cosine", SCORES),
    "model.position": ("xpos", LM_POSITIONS),
    "model.norm": ("middle", NORM_PLACEMENTS),
    "model.norm_type": ("batchnorm", NORM_TYPES),
    "model.dtype": ("float16", DTYPE_NAMES),
    "model.size": ("xxxl", SIZES),
    "model.family": ("gan", FAMILIES),
    "family": ("gan", FAMILIES),
    "train.schedule": ("cosin", optim.SCHEDULES),
    "train.decay_shape": ("cubic", optim.DECAY_SHAPES),
    "data.tokenizer": ("bpe", tokenizers.TOKENIZERS),
    "data.name": ("shakespear", builders.BUILDERS),
}
# The experiment args that set a choice (the rest are reached by overrides).
ARGS = {
    "model.kernel": "kernel",
    "model.score": "score",
    "model.position": "position",
    "model.norm": "norm",
    "data.tokenizer": "tokenizer",
    "data.name": "data",
}


def _message_pattern(field, value, valid):
    """The message names the field and value; every valid key must be listed."""
    return f"config.{field}={value!r} is not one of: {', '.join(sorted(valid))}"


@pytest.fixture
def no_work(monkeypatch):
    """Any corpus build, document load, tokenizer or LM data pipeline raises."""

    def forbidden(*args, **kwargs):
        raise AssertionError("data or tokenizer work started before the config was checked")

    for module, name in [
        (builders, "build"),
        (builders, "load_documents"),
        (pipeline, "make_lm_data"),
        (tokenizers, "get_tokenizer"),
        (tokenizers, "train_sentencepiece"),
    ]:
        monkeypatch.setattr(module, name, forbidden)


@pytest.mark.parametrize("field", sorted(TYPOS))
def test_every_typo_in_an_override_names_the_valid_keys(field, no_work):
    value, valid = TYPOS[field]
    config = configs.load_config(f"{LM}:smoke")
    with pytest.raises(ValueError, match=re.escape(_message_pattern(field, value, valid))):
        configs.apply_overrides(config, {field: value})


@pytest.mark.parametrize("field", sorted(ARGS))
def test_every_typo_in_an_experiment_arg_fails_at_load(field, no_work):
    value, valid = TYPOS[field]
    pattern = re.escape(_message_pattern(field, value, valid)) + ".*experiments/lm.py"
    with pytest.raises(ValueError, match=pattern):
        configs.load_config(f"{LM}:smoke,{ARGS[field]}={value}")


def test_train_and_evaluate_checks_before_data_or_workdir(tmp_path, no_work):
    """The safety net: a config built by hand, never through load_config."""
    from attn_jax.train.loop import train_and_evaluate

    config = ml_collections.ConfigDict(configs.load_config(f"{LM}:smoke").to_dict())
    config.model.kernel = "flsh"
    config.data.data_dir = str(tmp_path / "data")
    workdir = tmp_path / "run"
    with pytest.raises(ValueError, match="config.model.kernel='flsh' is not one of: auto"):
        train_and_evaluate(config, str(workdir))
    assert not workdir.exists()
    assert not (tmp_path / "data").exists()


def test_command_line_override_is_checked_before_work(tmp_path):
    data, workdir = tmp_path / "data", tmp_path / "run"
    env = {**os.environ, "ATTN_JAX_NO_REEXEC": "1", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "attn_jax.main",
            f"--config={LM}:smoke",
            "--config.model.kernel=flsh",
            f"--config.data.data_dir={data}",
            f"--workdir={workdir}",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode != 0
    assert _message_pattern("model.kernel", "flsh", KERNELS) in proc.stderr
    assert "lm.py" in proc.stderr
    assert not workdir.exists()
    assert not data.exists()


def test_kernel_that_cannot_compute_the_score_fails_at_config_time(no_work):
    config = configs.load_config(f"{LM}:smoke")
    with pytest.raises(ValueError, match="score='additive' needs config.model.kernel='xla'"):
        configs.apply_overrides(config, {"model.kernel": "blockwise", "model.score": "additive"})
    # Every choice the registries hold passes.
    for kernel in KERNELS:
        configs.apply_overrides(config, {"model.kernel": kernel})


def test_tfds_names_registered_or_prepared_pass(tmp_path, no_work):
    config = configs.load_config(f"{LM}:smoke")
    configs.apply_overrides(config, {"data.name": "lm1b", "data.data_dir": str(tmp_path)})
    configs.apply_overrides(config, {"data.name": "lm1b/bytes:1.1.0"})
    with pytest.raises(ValueError, match="prepared in"):
        configs.apply_overrides(config, {"data.name": "my_corpus", "data.data_dir": str(tmp_path)})
    (tmp_path / "tfds" / "my_corpus").mkdir(parents=True)
    configs.apply_overrides(config, {"data.name": "my_corpus", "data.data_dir": str(tmp_path)})


def test_configs_without_a_field_are_not_checked_for_it():
    """A minimal experiment (the sweep tests' fake one) has no model/data choices."""
    validate.check_config(ml_collections.ConfigDict(dict(model=dict(size="tiny"), seed=0)))


def test_contracts_doc_names_every_config_and_record_field():
    """docs/CONTRACTS.md stays the full list: a new field must be documented there."""
    from attn_jax.models.lm import LMConfig
    from attn_jax.train import record

    with open(os.path.join(REPO, "docs", "CONTRACTS.md")) as f:
        doc = f.read()
    config = configs.load_config(f"{LM}:size=xs")
    names = {k.split(".")[-1] for k in configs.flatten(config)}
    names |= {f.name for f in dataclasses.fields(LMConfig)}
    names |= set(record.FIELDS)
    missing = sorted(n for n in names if f"`{n}`" not in doc and f"`{n}`," not in doc)
    assert not missing, f"docs/CONTRACTS.md does not document {missing}"
