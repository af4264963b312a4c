"""Vision attention reports: rollout overlays, mean distance by depth, VQA word maps, run()."""

import json
import os

import numpy as np
import pytest
from flax import nnx
from interp_helpers import QUIET, REPO, load_script

from attn_jax import configs, families
from attn_jax.interp import run_with_cache, vision_plots, vision_report
from attn_jax.interp.rollout import attention_rollout


def smoke(experiment: str, **overrides):
    """(config, untrained model) of an experiment's smoke variant, built directly."""
    config = configs.load_config(os.path.join(REPO, f"experiments/{experiment}.py:smoke"))
    config = configs.apply_overrides(config, overrides)
    return config, families.get_family(config).model(nnx.Rngs(0))


def _files(out_dir, names):
    for name in names:
        assert os.path.getsize(os.path.join(out_dir, name)) > 0, name


def _grid_distances(grid: int, patch: int) -> np.ndarray:
    """[P, P] Euclidean distances between patch centres, by brute force."""
    centres = [((r + 0.5) * patch, (c + 0.5) * patch) for r in range(grid) for c in range(grid)]
    return np.array([[np.hypot(a[0] - b[0], a[1] - b[1]) for b in centres] for a in centres])


@pytest.mark.parametrize("cls_token", [True, False])
def test_mean_distance_by_depth_on_hand_built_weights(cls_token):
    grid, patch, N = 3, 4, 2
    P, T = grid * grid, grid * grid + int(cls_token)
    on_self = np.broadcast_to(np.eye(T), (2, N, T, T))
    uniform = np.full((2, N, T, T), 1.0 / T)
    d_LN = vision_report.distance_by_depth([on_self, uniform], grid, patch, cls_token)
    assert d_LN.shape == (2, N)
    np.testing.assert_allclose(d_LN[0], 0.0, atol=1e-12)
    # uniform: every patch query spreads evenly over the P patch keys ([CLS] left out)
    np.testing.assert_allclose(d_LN[1], _grid_distances(grid, patch).sum() / P**2, rtol=1e-12)


def test_word_maps_sum_to_one_with_registers_and_drop_padding():
    grid, R, T, length = 2, 2, 5, 3
    rng = np.random.default_rng(0)
    w = rng.random((1, 2, T, grid * grid + R))
    w /= w.sum(-1, keepdims=True)
    maps, registers = vision_report.word_maps(w, length, grid)
    assert maps.shape == (length, grid, grid)
    assert registers.shape == (length,)
    np.testing.assert_allclose(maps.sum((1, 2)) + registers, 1.0, rtol=1e-12)
    np.testing.assert_allclose(registers, w[0, :, :length, -R:].sum(-1).mean(0), rtol=1e-12)


def test_overlay_upsampling_keeps_each_patch_flat():
    m = np.arange(4.0).reshape(2, 2)
    up = vision_plots.upsample(m, 6, 6)
    assert up.shape == (6, 6)
    np.testing.assert_array_equal(up[:3, 3:], 1.0)
    np.testing.assert_array_equal(up[3:, :3], 2.0)


def test_vit_run_rollout_overlay_is_attention_rollout(tmp_path, fast_compile):
    config, model = smoke("vit")
    out = str(tmp_path / "vit")
    record = vision_report.run(config, model, 0, out, index=1)
    _files(out, ["attention.json", "rollout.png", "rollout.svg", "cls_attention.svg"])
    _files(out, ["mean_distance.png", "mean_distance.svg", "self_attention/heatmaps.svg"])
    with open(os.path.join(out, "attention.json")) as f:
        assert json.load(f)["rollout"] == record["rollout"]
    images, _, _ = vision_report.vit_test_images(config)
    _, cache = run_with_cache(model, images[1:2])
    weights = [cache[f"blocks.{i}.attn.weights"] for i in range(config.model.num_layers)]
    grid = config.model.image_size // config.model.patch_size
    want = attention_rollout(weights)[0, 0, 1:].reshape(grid, grid)  # the [CLS] row
    np.testing.assert_allclose(record["rollout"], want, atol=1e-5)
    dist = np.asarray(record["mean_distance_px"]["by_layer_head"])
    assert dist.shape == (config.model.num_layers, config.model.num_heads)
    assert np.all((dist > 0) & (dist < config.model.image_size * np.sqrt(2)))
    with open(os.path.join(out, "self_attention", "attention.json")) as f:
        tokens = json.load(f)["tokens"]
    assert tokens[:3] == ["cls", "r0c0", "r0c1"]
    assert len(tokens) == grid * grid + 1


def test_vqa_run_word_maps_sum_to_one_and_skip_padding(tmp_path, fast_compile):
    config, model = smoke("vqa", **{"model.context_registers": 2})
    out = str(tmp_path / "vqa")
    question = "is there a red shape"
    record = vision_report.run(config, model, 3, out, index=0, question=question, heads=[1])
    _files(out, ["attention.json", "cross_attention.png", "cross_attention.svg"])
    _files(out, ["image_rollout.png", "image_rollout.svg"])
    assert record["words"] == question.split()  # 5 of max_question_len: no padded rows
    for layer, maps in record["patch_maps"].items():
        maps = np.asarray(maps)
        assert maps.shape[0] == len(question.split())
        total = maps.sum((1, 2)) + np.asarray(record["register_weight"][layer])
        np.testing.assert_allclose(total, 1.0, atol=1e-4)
    assert 0 < min(min(r) for r in record["register_weight"].values())
    default = vision_report.run(config, model, 3, str(tmp_path / "own"), index=0)
    assert default["truth"] is not None  # the image's own question, answer known


def test_clip_run_writes_its_files(tmp_path, fast_compile):
    config, model = smoke("clip")
    out = str(tmp_path / "clip")
    record = vision_report.run(config, model, 0, out, index=2)
    _files(out, ["attention.json", "image_rollout.png", "image_rollout.svg"])
    _files(out, ["text_self_attention/heatmaps.png", "text_self_attention/heatmaps.svg"])
    with open(os.path.join(out, "text_self_attention", "attention.json")) as f:
        text = json.load(f)
    assert text["tokens"] == record["caption"].split()
    np.testing.assert_allclose(np.asarray(record["rollout"]).sum(), 1.0, atol=1e-5)


def test_run_refuses_other_families(tmp_path):
    config = configs.load_config(os.path.join(REPO, "experiments/lm.py:smoke"))
    with pytest.raises(ValueError, match="vit, vqa, clip"):
        vision_report.run(config, None, 0, str(tmp_path))


def test_cli_on_a_trained_vqa_run_writes_the_viewer_of_every_layer(tmp_path, fast_compile, capsys):
    """analysis/attention.py on a VQA run: the overlays, and in layers/ a report whose cross
    layers are real question words x (patches + registers) with rows that sum to one."""
    from attn_jax.train.loop import train_and_evaluate

    config = configs.load_config(os.path.join(REPO, "experiments/vqa.py:smoke"))
    quiet = {
        **QUIET,
        "train.examples": 64,
        "train.eval_at_examples": (),
        "train.warmup_steps": 1,
    }
    workdir = str(tmp_path / "run")
    assert train_and_evaluate(configs.apply_overrides(config, quiet), workdir)["status"] == "done"
    cli = load_script("attention")
    out = str(tmp_path / "att")
    question = "is there a red shape"
    argv = ["--workdir", workdir, "--out", out, "--image_index", "1", "--question", question]
    assert cli.main(argv) == 0
    assert "layers/attention.html" in capsys.readouterr().out
    _files(out, ["cross_attention.svg", "layers/heatmaps.svg", "layers/attention.html"])
    with open(os.path.join(out, "layers", "attention.json")) as f:
        layers = json.load(f)
    weights = np.load(os.path.join(out, "layers", "weights.npz"))
    R, P = config.model.context_registers, (config.model.image_size // config.model.patch_size) ** 2
    cross = [name for name, info in layers["layer_info"].items() if info["kind"] == "cross"]
    assert len(cross) == config.model.fusion_layers
    for name in cross:
        info = layers["layer_info"][name]
        assert info["tokens"] == question.split()
        assert info["key_tokens"][-R:] == [f"reg{i}" for i in range(R)]
        assert weights[name].shape == (config.model.num_heads, len(question.split()), P + R)
        np.testing.assert_allclose(weights[name].sum(-1), 1.0, atol=1e-5)
    assert cli.main([*argv[:6], "--text", "x"]) == 2  # --text is not a VQA input
    assert cli.main(["--workdir", workdir, "--out", out, "--target", "x"]) == 2
