"""Sweep specs: stable run ids, and bad specs fail before any training, saying why."""

import os
import subprocess
import sys

import pytest
from sweep_helpers import FAKE_EXPERIMENT, FAKE_TRAINER, REPO, fake_sweep, write_spec

from attn_jax import configs
from attn_jax.sweep import Sweep, SweepSpecError, Trial, designs, resolve, run_sweep


def test_run_ids_are_config_hashes_and_stable():
    first = resolve(fake_sweep())
    second = resolve(fake_sweep())
    assert [t.run_id for t in first] == [t.run_id for t in second]
    assert len({t.run_id for t in first}) == len(first) == 6
    for t in first:
        assert t.run_id == configs.config_hash(t.config)
        assert t.config.train.tokens == t.trial.tags["tokens"]


def test_run_ids_stable_across_processes(tmp_path):
    spec = write_spec(
        tmp_path / "spec.py", "Sweep('s', EXPERIMENT, designs.grid(['xs', 'm'], [32]))"
    )
    code = (
        "import sys; from attn_jax.sweep import load_sweep, resolve; "
        "print(' '.join(t.run_id for t in resolve(load_sweep(sys.argv[1]))))"
    )
    out = [
        subprocess.run(
            [sys.executable, "-c", code, spec], capture_output=True, text=True, check=True, cwd=REPO
        ).stdout.split()
        for _ in range(2)
    ]
    assert out[0] == out[1] == [t.run_id for t in resolve(fake_sweep(("xs", "m"), (32,)))]


def test_anything_in_the_config_changes_the_id():
    base = Sweep("s", f"{FAKE_EXPERIMENT}:smoke", [Trial("size=s")])
    ids = {
        resolve(base)[0].run_id,
        resolve(Sweep("s", base.experiment, [Trial("size=s", {"seed": 1})]))[0].run_id,
        resolve(Sweep("s", base.experiment, [Trial("size=s", {"train.lr": 3e-3})]))[0].run_id,
        resolve(Sweep("s", f"{FAKE_EXPERIMENT}", [Trial("size=s")]))[0].run_id,  # not smoke
    }
    assert len(ids) == 4
    # Tags are labels, not config: they don't change the id.
    tagged = Sweep("s", base.experiment, [Trial("size=s", tags={"note": "x"})])
    assert resolve(tagged)[0].run_id == resolve(base)[0].run_id


def test_duplicate_trials_resolve_once():
    sweep = fake_sweep(("xs",), (32,))
    doubled = Sweep("d", sweep.experiment, list(sweep.trials) * 2)
    assert len(resolve(doubled)) == 1


@pytest.mark.parametrize(
    ("trials", "message"),
    [
        ([], "has no trials"),
        ([Trial("size=xxl")], "unknown size 'xxl'; valid sizes: xs, s, m, l"),
        ([Trial("size=s", {"train.lr_typo": 1.0})], "'train.lr_typo'"),
        ([Trial("size=s", {"optimizer.lr": 1.0})], "'optimizer.lr'"),
        ([Trial("sise=s")], "Unknown config arg 'sise'"),
    ],
)
def test_bad_spec_fails_before_training(tmp_path, trials, message):
    sweep = Sweep("bad", f"{FAKE_EXPERIMENT}:smoke", trials)
    with pytest.raises(SweepSpecError, match=message.replace("(", r"\(")):
        run_sweep(sweep, str(tmp_path / "out"), trainer=FAKE_TRAINER, progress=False)
    assert not os.path.exists(tmp_path / "out" / "trials")
    assert not os.path.exists(tmp_path / "out" / "results.jsonl")


def test_bad_trial_is_named_among_good_ones():
    trials = designs.grid(["xs", "s"], [32]) + [Trial("size=s", {"train.nope": 1})]
    with pytest.raises(SweepSpecError, match=r"trial 2 .*'train.nope'.*valid: "):
        resolve(Sweep("bad", f"{FAKE_EXPERIMENT}:smoke", trials))


def test_missing_experiment_and_empty_designs():
    with pytest.raises(SweepSpecError, match="experiments/nope.py"):
        resolve(Sweep("x", "experiments/nope.py:smoke", [Trial()]))
    with pytest.raises(SweepSpecError, match="`sizes` is empty"):
        designs.grid([], [1000])
    with pytest.raises(SweepSpecError, match="`token_budgets` is empty"):
        designs.grid(["s"], [])


def test_cli_bad_spec_exits_with_the_message(tmp_path):
    spec = write_spec(
        tmp_path / "spec.py", "Sweep('s', EXPERIMENT, designs.grid(['s', 'huge'], [32]))"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "attn_jax.sweep",
            "run",
            spec,
            "--out",
            str(tmp_path / "out"),
            "--trainer",
            FAKE_TRAINER,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 2, proc.stderr
    assert "unknown size 'huge'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not os.path.exists(tmp_path / "out" / "trials")
