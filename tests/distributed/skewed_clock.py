"""`python tests/distributed/skewed_clock.py <attn_jax.main args>`: attn_jax.main with
process 1's training-loop clock running ATTN_JAX_TEST_CLOCK_RATE times fast.

Two machines' clocks never agree; this makes the disagreement large enough to
matter within a test: a decision read from the clock (train.time_limit_s, a
time budget's plan) that each process took for itself would come at different
steps on the two processes.
"""

import os
import sys
import time
import types

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    from attn_jax import main
    from attn_jax.train import loop, preemption, time_budget

    if os.environ.get("JAX_PROCESS_ID") == "1":
        rate, real, t0 = float(os.environ["ATTN_JAX_TEST_CLOCK_RATE"]), time.time, time.time()
        fast = types.SimpleNamespace(time=lambda: t0 + rate * (real() - t0))
        loop.time = preemption.time = time_budget.time = fast
    sys.argv[0] = "attn_jax.main"
    sys.exit(main.run())
