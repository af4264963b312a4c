"""The CNN family: experiments/vit.py:arch=cnn,smoke end to end, on the ViT family's data."""

import math
import os

from attn_jax import configs
from attn_jax.families import vit as vit_family
from attn_jax.train.loop import train_and_evaluate

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUIET = {
    "train.progress_bar": False,
    "train.tensorboard": False,
    "train.report_mfu": False,
    "train.async_checkpoint": False,
    "train.num_devices": 1,
}


def test_cnn_smoke_trains_end_to_end(tmp_path, fast_compile):
    config = configs.load_config(os.path.join(REPO, "experiments/vit.py:arch=cnn,smoke"))
    config = configs.apply_overrides(config, QUIET)
    record = train_and_evaluate(config, str(tmp_path))
    assert record["status"] == "done"
    assert record["family"] == "cnn"
    assert record["examples_seen"] == 60 * 32
    counts = vit_family.counts_cnn(config)
    assert record["params_total"] == counts["params_total"]
    assert record["flops_per_unit"] == counts["flops_per_unit"]
    evals = record["eval"]
    assert evals["eval_examples"] == len(vit_family.load("digits", "test")["label"])
    # it learned: below a uniform guess (its zero-initialized head starts there)
    assert evals["loss"] < math.log(10) - 0.2
    assert evals["accuracy"] > 0.25


def test_arch_arg_is_checked():
    import pytest

    with pytest.raises(ValueError, match="valid: vit, cnn"):
        configs.load_config(os.path.join(REPO, "experiments/vit.py:arch=resnet"))
    with pytest.raises(ValueError, match="Unknown CNN size"):
        configs.load_config(os.path.join(REPO, "experiments/vit.py:arch=cnn,size=s6"))
