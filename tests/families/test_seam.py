"""The family seam: a family the library does not know trains through the loop and the sweep.

The toy family (toy_family.py) counts examples, pads its eval set and has a
host-side decode metric; nothing in attn_jax.train or attn_jax.sweep names it.
"""

import math
import os

import pytest
import toy_family

from attn_jax import families
from attn_jax.scaling import records as scaling_records
from attn_jax.sweep import designs, runner
from attn_jax.sweep.spec import Sweep, resolve
from attn_jax.train.loop import train_and_evaluate

HERE = os.path.dirname(os.path.abspath(__file__))
EXPERIMENT = os.path.join(HERE, "toy_experiment.py")


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(families.FAMILIES, toy_family.NAME, None)  # restored after the test
    toy_family.register()
    return toy_family.get_config()


def test_toy_examples_family_trains_through_the_loop(toy, tmp_path):
    rec = train_and_evaluate(toy, str(tmp_path))
    assert rec["status"] == "done"
    assert rec["unit"] == "examples"
    assert rec["steps"] == math.ceil(320 / 16) == 20
    # Every train row is a real example: 20 steps x 16.
    assert rec["examples_seen"] == rec["units_seen"] == 320
    assert rec["tokens_seen"] is None
    # The eval set is 50 examples in 4 batches of 16: the 14 padded rows count nothing.
    assert rec["eval"]["eval_examples"] == toy_family.N_EVAL
    assert rec["eval"]["accuracy"] > 0.9  # the blobs are separable: it learned
    assert rec["eval"]["host_accuracy"] == pytest.approx(rec["eval"]["accuracy"], abs=1e-6)
    assert rec["eval"]["final"] == 1.0  # decode_eval ran at the end, told so
    counts = toy_family.counts(toy)
    assert rec["params_total"] == counts["params_total"]
    assert rec["flops_per_example"] == rec["flops_per_unit"] == counts["flops_per_unit"]
    assert rec["train_flops"] == counts["flops_per_unit"] * 320
    (budget,) = rec["evals_at_budget"]
    assert budget["examples"] == 160
    assert budget["examples_budget"] == 160
    assert budget["step"] == 10
    assert rec["examples_per_second"] > 0


def test_resumed_toy_run_keeps_counting_examples(toy, tmp_path):
    toy.unlock()
    toy.train.stop_after_steps = 7
    first = train_and_evaluate(toy, str(tmp_path))
    assert first["status"] == "preempted"
    assert first["examples_seen"] == 7 * 16
    second = train_and_evaluate(toy, str(tmp_path))  # 7 more steps of this process
    assert second["examples_seen"] == 14 * 16  # the count came back with the checkpoint
    third = train_and_evaluate(toy, str(tmp_path))
    assert third["status"] == "done"
    assert third["examples_seen"] == 320


def test_toy_family_sweeps_in_examples_with_planned_flops(toy, tmp_path):
    trials = designs.grid(
        ["a", "b"],
        [160, 320],
        tokens_key="train.examples",
        eval_at_key="train.eval_at_examples",
    )
    sweep = Sweep(name="toy", experiment=f"{EXPERIMENT}:size=a", trials=trials)
    resolved = resolve(sweep, sizes=toy_family.SIZES)
    planned = {t.trial.tags["size"] + str(t.trial.tags["examples"]): t for t in resolved}
    assert runner.planned_steps(planned["a160"]) == 10
    # FLOPs from the family's registered counts, with no model built.
    assert runner.planned_flops(planned["b320"]) == 6.0 * 8 * 3 * 320
    per_unit, params, per_step = designs.experiment_flops(f"{EXPERIMENT}:size=a")
    assert (per_unit("b"), params("b"), per_step) == (6.0 * 8 * 3, 8 * 3 + 3, 16)
    out = str(tmp_path / "sweep")
    recs = runner.run_sweep(sweep, out, executor="inline", progress=False, sizes=toy_family.SIZES)
    assert sorted(r["examples_seen"] for r in recs) == [160, 160, 320, 320]
    assert {r["unit"] for r in recs} == {"examples"}
    data = scaling_records.load_records(out, flops="analytic")
    assert sorted(data.D.tolist()) == [160.0, 160.0, 320.0, 320.0]  # D is in examples
