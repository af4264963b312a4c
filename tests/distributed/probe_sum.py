"""A two-process probe for attn_jax.launch: `python -m probe_sum [--fail_process I]`.

Each process joins jax.distributed through attn_jax.train.mesh, contributes its
rows (all equal to process_index + 1) to one global batch with
mesh.device_put_batch, and prints one JSON line: the global shape, the sum
computed across processes, and what each process saw. With --fail_process I,
process I exits with status 3 before joining, as a process that crashed would.
"""

import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

from attn_jax.train import mesh as mesh_lib

ROWS, COLS = 2, 3  # per process

if __name__ == "__main__":
    if "--fail_process" in sys.argv:
        fail = int(sys.argv[sys.argv.index("--fail_process") + 1])
        if int(os.environ["JAX_PROCESS_ID"]) == fail:
            sys.exit(3)
    mesh_lib.maybe_initialize_distributed()
    mesh = mesh_lib.make_mesh()
    local_RC = np.full((ROWS, COLS), jax.process_index() + 1, np.float32)
    batch = mesh_lib.device_put_batch({"x": local_RC}, mesh_lib.batch_sharding(mesh))
    total = jax.jit(jnp.sum, out_shardings=mesh_lib.replicated(mesh))(batch["x"])
    report = {
        "process": jax.process_index(),
        "processes": jax.process_count(),
        "devices": jax.device_count(),
        "local_devices": jax.local_device_count(),
        "global_shape": list(batch["x"].shape),
        "sum": float(total),
    }
    print("PROBE " + json.dumps(report), flush=True)
