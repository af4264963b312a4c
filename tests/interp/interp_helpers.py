"""What the interp tests share: the repo root, quiet training overrides, the analysis scripts."""

import os

from attn_jax import configs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# A smoke run trained for a test: no bar, no TensorBoard, no MFU probe, one device, and only
# the final checkpoint.
QUIET = {
    "train.progress_bar": False,
    "train.tensorboard": False,
    "train.report_mfu": False,
    "train.num_devices": 1,
    "train.checkpoint_every": 0,
}


def load_script(name: str):
    """analysis/<name>.py imported as a module (the scripts are not a package)."""
    return configs.import_file(os.path.join(REPO, f"analysis/{name}.py"))
