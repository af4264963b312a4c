"""The Ray executor on a local cluster (loopback) gives the inline executor's records.

Needs the [ray] extra; imported in the fixture so the default (not slow) suite
collects without it. Without Ray this test fails, it is not skipped.
"""

import pytest
from sweep_helpers import FAKE_TRAINER, deterministic, fake_sweep

from attn_jax.sweep import run_sweep, store

# ray.init forks (then execs) its daemons; if an earlier test started JAX in this
# process, JAX warns on the fork, though nothing JAX runs in those children.
pytestmark = pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_executor_matches_inline(tmp_path, local_ray):
    sweep = fake_sweep(("xs", "m"), (32,))
    kw = dict(trainer=FAKE_TRAINER, progress=False)
    inline = run_sweep(sweep, str(tmp_path / "inline"), **kw)
    on_ray = run_sweep(sweep, str(tmp_path / "ray"), executor="ray", workers=2, **kw)
    assert deterministic(on_ray) == deterministic(inline)
    # Rerun on Ray: nothing runs twice.
    run_sweep(sweep, str(tmp_path / "ray"), executor="ray", workers=2, **kw)
    assert len(store.read_results(str(tmp_path / "ray"))) == 2
