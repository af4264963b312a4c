"""Attention reports of the vision families: ViT, VQA and CLIP (PNG + SVG, attention.json).

Dimension key: B batch, N heads, T query tokens, S keys (patches + registers for
VQA's cross-attention), P patches, g patches per side (P = g * g), L layers,
R context registers.

    record = run(config, model, step, "results/attention/vit", index=3)

`run` dispatches on config.family and writes, in `out_dir`:
  vit   rollout.png/.svg   rollout after each layer over the image (Abnar & Zuidema
                           2020): the class token's row, or with GAP the mean over
                           the patch queries
        cls_attention.*    per layer (columns) and head (rows, first the head mean):
                           the class token's attention over the patches (GAP: the
                           attention each patch receives, averaged over queries)
        mean_distance.*    mean attention distance in pixels by depth and head over
                           `DISTANCE_IMAGES` test images (Dosovitskiy et al. 2021, fig. 7)
        self_attention/    `report.write_report` of the image's tokens ("cls", "r0c1")
  vqa   cross_attention.*  rows = question words, columns = fusion layers: the head
                           mean of each word's cross-attention over the patches; the
                           mass left on the context registers is in the JSON
        image_rollout.*    the image encoder's rollout (mean over patch queries)
  clip  image_rollout.*    the image tower's rollout
        text_self_attention/  `report.write_report` of the caption's tokens
  attention.json           the numbers behind every figure (the returned record)

`layers` picks the layer indices drawn per layer (rollout always multiplies all
layers); `heads` picks the heads averaged and reported (rollout and the distance
table use all heads). Images are the test split's, normalized as in training;
the figures show them rescaled to [0, 1].
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np

from attn_jax.interp import measures, report, vision_plots
from attn_jax.interp.capture import run_with_cache
from attn_jax.interp.rollout import attention_rollout

FAMILIES = ("vit", "vqa", "clip")
DISTANCE_IMAGES = 256  # test images the mean-distance table averages over
VERSION = 1


# ----------------------------------------------------------------------------- measures


def layer_weights(cache, prefix: str, sub: str = "attn") -> list[np.ndarray]:
    """[weights_BNTS per layer] of keys "<prefix>.<i>.<sub>.weights", in layer order."""
    out, i = [], 0
    while f"{prefix}.{i}.{sub}.weights" in cache:
        out.append(np.asarray(cache[f"{prefix}.{i}.{sub}.weights"], np.float64))
        i += 1
    if not out:
        raise ValueError(f"No '{prefix}.0.{sub}.weights' in the capture; keys: {sorted(cache)}.")
    return out


def patch_map(values_BT, grid: int, cls_token: bool) -> np.ndarray:
    """[B, g, g]: per-token values of the patches (the class token dropped) on the patch grid."""
    v = np.asarray(values_BT)[:, 1:] if cls_token else np.asarray(values_BT)
    if v.shape[1] != grid * grid:
        raise ValueError(f"{v.shape[1]} patch values do not fill a {grid}x{grid} grid.")
    return v.reshape(v.shape[0], grid, grid)


def rollout_maps(weights: Sequence, grid: int, cls_token: bool) -> np.ndarray:
    """[L, B, g, g]: rollout after each layer, read as a map over the patches.

    With a class token, its row R[0, 1:] (what reaches the classifier); without
    (GAP pools every patch), the mean of R's rows over the patch queries.
    """
    rolls = attention_rollout(list(weights), all_layers=True)
    rows = [r[:, 0] if cls_token else r.mean(axis=1) for r in rolls]
    return np.stack([patch_map(r, grid, cls_token) for r in rows])


def received_maps(weights_BNTS, grid: int, cls_token: bool, heads=None) -> np.ndarray:
    """[n + 1, B, g, g]: the class token's attention over the patches, head mean first.

    Without a class token: the attention each patch receives, averaged over queries.
    """
    w = np.asarray(weights_BNTS, np.float64)
    if heads is not None:
        w = w[:, list(heads)]
    row_BNS = w[:, :, 0] if cls_token else w.mean(axis=2)
    per = [row_BNS.mean(axis=1)] + [row_BNS[:, n] for n in range(row_BNS.shape[1])]
    return np.stack([patch_map(r, grid, cls_token) for r in per])


def distance_by_depth(weights: Sequence, grid: int, patch_size: int, cls_token: bool):
    """[L, N] mean attention distance in pixels, per layer and head, patches only.

    Weights x the distance between patch centres (`measures.patch_coordinates`),
    averaged over the patch queries of every image; the class token is left out as
    query and key (each row renormalized over the patches), as it has no position.
    """
    coords_T2, valid_T = measures.patch_coordinates(grid, patch_size, cls_token=cls_token)
    out = []
    for w in weights:
        valid_BT = np.broadcast_to(valid_T, (w.shape[0], len(valid_T)))
        out.append(measures.mean_attention_distance(w, coords_T2, coords_T2, valid_BT, valid_BT))
    return np.stack(out)


def uniform_distance(grid: int, patch_size: int) -> float:
    """The mean distance of uniform attention over the patches: the no-locality reference."""
    coords_P2, _ = measures.patch_coordinates(grid, patch_size, cls_token=False)
    return float(np.sqrt(((coords_P2[:, None] - coords_P2[None]) ** 2).sum(-1)).mean())


def word_maps(cross_BNTS, length: int, grid: int, heads=None) -> tuple[np.ndarray, np.ndarray]:
    """(maps [length, g, g], registers [length]): each real word's head-mean cross-attention.

    Patches are the first g * g keys; the rest are context registers, whose summed
    weight is the word's "nothing here" (patches + registers = 1 per word).
    Padded words (positions >= length) are left out.
    """
    w = np.asarray(cross_BNTS, np.float64)
    if w.shape[0] != 1:
        raise ValueError(f"word_maps reads one example, got batch {w.shape[0]}.")
    if heads is not None:
        w = w[:, list(heads)]
    w_TS = w[0].mean(axis=0)[:length]
    P = grid * grid
    return w_TS[:, :P].reshape(length, grid, grid), w_TS[:, P:].sum(axis=-1)


def patch_labels(grid: int, cls_token: bool) -> list[str]:
    """Token labels of a ViT: "cls" (when there is one), then "r<row>c<col>" row-major."""
    return (["cls"] if cls_token else []) + [f"r{r}c{c}" for r in range(grid) for c in range(grid)]


def _selected(n: int, layers) -> list[int]:
    chosen = list(range(n)) if layers is None else [int(i) for i in layers]
    bad = [i for i in chosen if not 0 <= i < n]
    if bad or not chosen:
        raise ValueError(f"layers={chosen} must be indices in [0, {n}).")
    return chosen


def _write_json(record: dict, out_dir: str) -> dict:
    with open(os.path.join(out_dir, "attention.json"), "w") as f:
        json.dump(record, f, indent=1)
    return record


def _rounded(x, digits: int = 5):
    return np.round(np.asarray(x, np.float64), digits).tolist()


# ----------------------------------------------------------------------------- data


def vit_test_images(config) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(normalized test images [I,H,W,C], labels [I], class names) as the ViT run trained."""
    from attn_jax.data import images as image_data
    from attn_jax.families import vit as vit_family

    name = config.data.name
    train, test = vit_family.load(name, "train"), vit_family.load(name, "test")
    _, eval_tf = vit_family.make_transforms(config.data, *vit_family._normalizer(train["image"]))
    names = (
        list(image_data.FASHION_MNIST_CLASSES)
        if name == "fashion_mnist"
        else [str(i) for i in range(int(config.model.num_classes))]
    )
    return eval_tf(test, None)["image"], test["label"], names


def vqa_test_data(config) -> dict:
    """The test split as the VQA run saw it: normalized images, questions, the train vocab."""
    from attn_jax.data.vqa import load_vqa
    from attn_jax.families import vqa as vqa_family

    T, factor = int(config.model.max_question_len), int(config.data.downsample)
    _, train_images = vqa_family.load("train", None, T, factor)
    rows, test_images = vqa_family.load("test", train_images["vocab"], T, factor)
    x = train_images["image"] / 255.0
    mean_C, std_C = x.mean((0, 1, 2)), np.maximum(x.std((0, 1, 2)), 1e-3)
    table = ((test_images["image"] / 255.0 - mean_C) / std_C).astype(np.float32)
    return dict(rows, image=table, text=load_vqa("test")["question"], vocab=train_images["vocab"])


def clip_test_data(config) -> tuple[np.ndarray, np.ndarray]:
    """(normalized test images, caption classes) as the CLIP run trained."""
    from attn_jax.families import clip as clip_family
    from attn_jax.families import vit as vit_family

    train, test = clip_family.load("train"), clip_family.load("test")
    mean_C, std_C = vit_family._normalizer(train["image"])
    images = ((test["image"].astype(np.float32) / 255.0 - mean_C) / std_C).astype(np.float32)
    return images, test["label"]


def _check_index(index: int, n: int, what: str) -> int:
    if not 0 <= int(index) < n:
        raise ValueError(f"index={index} is outside the {n} test {what}; pick 0..{n - 1}.")
    return int(index)


# ----------------------------------------------------------------------------- ViT


def _vit_figures(cfg, weights, image_HWC, out_dir, title, *, layers, heads) -> dict:
    """Rollout and per-layer class-token overlays of one image; the self-attention report."""
    cls = cfg.pool == "cls"
    chosen = _selected(len(weights), layers)
    rolls_LBgg = rollout_maps(weights, cfg.grid, cls)
    files = vision_plots.overlay_grid(
        image_HWC,
        rolls_LBgg[:, 0][None],
        row_labels=["rollout"],
        col_labels=[f"after layer {i}" for i in range(len(weights))],
        out_prefix=os.path.join(out_dir, "rollout"),
        title=title,
    )
    per_layer = [received_maps(weights[i], cfg.grid, cls, heads)[:, 0] for i in chosen]
    maps_RCgg = np.stack(per_layer, axis=1)
    head_ids = list(range(cfg.num_heads)) if heads is None else [int(h) for h in heads]
    files += vision_plots.overlay_grid(
        image_HWC,
        maps_RCgg,
        row_labels=["head mean"] + [f"head {h}" for h in head_ids],
        col_labels=[f"layer {i}" for i in chosen],
        out_prefix=os.path.join(out_dir, "cls_attention"),
        title=("[CLS] attention over patches: " if cls else "attention received: ") + title,
    )
    sub = os.path.join(out_dir, "self_attention")
    report.write_report(
        {f"blocks.{i}.attn.weights": weights[i][:, head_ids] for i in chosen},
        patch_labels(cfg.grid, cls),
        sub,
        causal=False,
        heads=head_ids,
        meta={"title": title},
    )
    return {
        "rollout": _rounded(rolls_LBgg[-1, 0]),
        "rollout_by_layer": _rounded(rolls_LBgg[:, 0]),
        "received_head_mean": {f"layer {i}": _rounded(m[0]) for i, m in zip(chosen, per_layer)},
        "files": [os.path.relpath(p, out_dir) for p in files] + ["self_attention/"],
        "report_dir": "self_attention",
    }


def vit_run(config, model, step, out_dir, *, index=0, layers=None, heads=None) -> dict:
    """The ViT report (module docstring): one test image, and the distance table over many."""
    os.makedirs(out_dir, exist_ok=True)
    images, labels, names = vit_test_images(config)
    index = _check_index(index, len(images), "images")
    truth = names[int(labels[index])]
    cfg = model.config
    logits, cache = run_with_cache(model, images[index : index + 1])
    logits = np.asarray(logits)[0]
    pred = names[int(logits.argmax())]
    title = f"test image {index}: truth {truth}, predicted {pred} (step {step})"
    weights = layer_weights(cache, "blocks")
    out = _vit_figures(cfg, weights, images[index], out_dir, title, layers=layers, heads=heads)
    _, cache = run_with_cache(model, images[:DISTANCE_IMAGES])
    dist_LN = distance_by_depth(
        layer_weights(cache, "blocks"), cfg.grid, cfg.patch_size, cfg.pool == "cls"
    )
    n_images = min(DISTANCE_IMAGES, len(images))
    vision_plots.distance_scatter(
        dist_LN,
        out_prefix=os.path.join(out_dir, "mean_distance"),
        title=f"ViT mean attention distance, {n_images} test images (step {step})",
        reference=uniform_distance(cfg.grid, cfg.patch_size),
    )
    out["files"] += ["mean_distance.png", "mean_distance.svg"]
    record = {
        "version": VERSION,
        "family": "vit",
        "step": None if step is None else int(step),
        "index": index,
        "truth": truth,
        "prediction": pred,
        "logits": _rounded(logits),
        "pool": cfg.pool,
        "grid": cfg.grid,
        "patch_size": cfg.patch_size,
        "mean_distance_px": {
            "images": int(n_images),
            "by_layer_head": _rounded(dist_LN, 3),
            "by_layer_mean": _rounded(np.nanmean(dist_LN, axis=1), 3),
            "uniform_reference": round(uniform_distance(cfg.grid, cfg.patch_size), 3),
        },
        **out,
    }
    return _write_json(record, out_dir)


# ----------------------------------------------------------------------------- VQA


def _vqa_question(data, index: int, question: str | None, T: int):
    """(text, ids [1, T], length, truth answer id or None) of the question asked about image `index`."""
    from attn_jax.families import vqa as vqa_family

    own = [q for q, i in zip(range(len(data["text"])), data["image_id"]) if int(i) == index]
    if not own:
        raise ValueError(f"Test image {index} has no questions; pick another --index.")
    if question is None:
        question = data["text"][own[0]]
    match = [q for q in own if data["text"][q].lower().strip() == question.lower().strip()]
    ids_1T, lengths_1 = vqa_family.encode([question], data["vocab"], T)
    truth = int(data["answer"][match[0]]) if match else None
    return question, ids_1T, int(lengths_1[0]), truth


def vqa_run(config, model, step, out_dir, *, index=0, question=None, layers=None, heads=None):
    """The VQA report (module docstring) of test image `index` and one question about it."""
    from attn_jax.data.vqa import ANSWERS
    from attn_jax.families import vqa as vqa_family

    os.makedirs(out_dir, exist_ok=True)
    cfg = model.config
    data = vqa_test_data(config)
    index = _check_index(index, len(data["image"]), "images")
    text, ids_1T, length, truth = _vqa_question(data, index, question, cfg.max_question_len)
    image_HWC = data["image"][index]
    logits, cache = run_with_cache(model, image_HWC[None], ids_1T, np.asarray([length], np.int32))
    probs = np.exp(np.asarray(logits, np.float64)[0] - np.max(logits))
    probs /= probs.sum()
    pred = ANSWERS[int(probs.argmax())]
    truth_name = "?" if truth is None else ANSWERS[truth]
    words = vqa_family.tokenize(text)[:length] or ["?"]
    grid = cfg.vit_config.grid
    cross = layer_weights(cache, "fusion_blocks", "cross_attn")
    chosen = _selected(len(cross), layers)
    maps, registers = zip(*(word_maps(cross[i], length, grid, heads) for i in chosen))
    title = f"Q: {text}  predicted: {pred} ({probs.max():.2f})  truth: {truth_name}  (step {step})"
    files = vision_plots.overlay_grid(
        image_HWC,
        np.stack(maps, axis=1),
        row_labels=[plots_label(w) for w in words],
        col_labels=[f"fusion {i}" for i in chosen],
        out_prefix=os.path.join(out_dir, "cross_attention"),
        title=title,
        shared_scale=True,
    )
    image_w = layer_weights(cache, "image_encoder.blocks")
    roll_gg = rollout_maps(image_w, grid, cls_token=False)[-1, 0]
    files += vision_plots.overlay_grid(
        image_HWC,
        roll_gg[None, None],
        row_labels=["rollout"],
        col_labels=[f"image encoder, {len(image_w)} layers"],
        out_prefix=os.path.join(out_dir, "image_rollout"),
        title=f"test image {index} (step {step})",
    )
    record = {
        "version": VERSION,
        "family": "vqa",
        "step": None if step is None else int(step),
        "index": index,
        "question": text,
        "words": words,
        "prediction": pred,
        "probability": float(probs.max()),
        "truth": None if truth is None else truth_name,
        "answers": {a: round(float(p), 5) for a, p in zip(ANSWERS, probs)},
        "context_registers": int(cfg.context_registers),
        "heads": "all" if heads is None else [int(h) for h in heads],
        "fusion_layers": chosen,
        "register_weight": {f"fusion {i}": _rounded(r) for i, r in zip(chosen, registers)},
        "patch_maps": {f"fusion {i}": _rounded(m) for i, m in zip(chosen, maps)},
        "image_rollout": _rounded(roll_gg),
        "files": [os.path.relpath(p, out_dir) for p in files] + ["layers/"],
        "report_dir": "layers",
    }
    _vqa_layers_report(cache, words, length, cfg, os.path.join(out_dir, "layers"), heads, title)
    return _write_json(record, out_dir)


def _vqa_layers_report(cache, words, length, cfg, out_dir, heads, title) -> dict:
    """Every attention layer of one VQA example as a `report.write_report` (for the viewer):
    the image encoder over patches, the question's self-attention over its real words, and
    each fusion layer's cross-attention from the words to the patches + registers."""
    patches = patch_labels(cfg.vit_config.grid, cls_token=False)
    keys = patches + [f"reg{i}" for i in range(cfg.context_registers)]
    image = {"tokens": patches, "kind": "self", "causal": False}
    question = {"tokens": words, "kind": "self", "causal": False}
    cross = {"tokens": words, "key_tokens": keys, "kind": "cross", "causal": False}
    weights, layer_info = {}, {}
    for key, w in cache.items():
        layer = key.removesuffix(".weights")
        w = np.asarray(w, np.float32)
        if heads is not None:
            w = w[:, [int(h) for h in heads]]
        if layer.startswith("image_encoder."):
            weights[key], layer_info[layer] = w, image
        elif layer.endswith("cross_attn"):
            weights[key], layer_info[layer] = w[:, :, :length], cross
        else:
            weights[key], layer_info[layer] = w[:, :, :length, :length], question
    return report.write_report(
        weights,
        words,
        out_dir,
        causal=False,
        heads=heads,
        layer_info=layer_info,
        meta={"title": title},
    )


def plots_label(word: str) -> str:
    """A row label for a question word."""
    return word if len(word) <= 12 else word[:11] + "\u2026"


# ----------------------------------------------------------------------------- CLIP


def clip_run(config, model, step, out_dir, *, index=0, question=None, layers=None, heads=None):
    """The CLIP report: the image tower's rollout and the caption's self-attention."""
    from attn_jax.families import clip as clip_family

    os.makedirs(out_dir, exist_ok=True)
    cfg = model.config
    images, labels = clip_test_data(config)
    index = _check_index(index, len(images), "images")
    text = clip_family.caption(0, int(labels[index])) if question is None else question
    tokens_1T, lengths_1 = clip_family.tokenize([text], int(cfg.max_len))
    (image_1E, text_1E), cache = run_with_cache(
        model, images[index : index + 1], tokens_1T, lengths_1
    )
    similarity = float(np.sum(np.asarray(image_1E) * np.asarray(text_1E)))
    icfg = model.image.config
    cls = icfg.pool == "cls"
    roll_LBgg = rollout_maps(layer_weights(cache, "image.blocks"), icfg.grid, cls)
    title = f"test image {index}, caption '{text}': cosine {similarity:.3f} (step {step})"
    files = vision_plots.overlay_grid(
        images[index],
        roll_LBgg[:, 0][None],
        row_labels=["rollout"],
        col_labels=[f"after layer {i}" for i in range(len(roll_LBgg))],
        out_prefix=os.path.join(out_dir, "image_rollout"),
        title=title,
    )
    n = int(lengths_1[0])
    text_w = layer_weights(cache, "text.blocks")
    chosen = _selected(len(text_w), layers)
    head_ids = list(range(text_w[0].shape[1])) if heads is None else [int(h) for h in heads]
    report.write_report(
        {f"text.blocks.{i}.attn.weights": text_w[i][:, head_ids, :n, :n] for i in chosen},
        text.split(),
        os.path.join(out_dir, "text_self_attention"),
        causal=False,
        token_ids=tokens_1T[0, :n],
        heads=head_ids,
        meta={"title": f"caption '{text}' (step {step})"},
    )
    record = {
        "version": VERSION,
        "family": "clip",
        "step": None if step is None else int(step),
        "index": index,
        "caption": text,
        "label": int(labels[index]),
        "cosine_similarity": similarity,
        "rollout": _rounded(roll_LBgg[-1, 0]),
        "rollout_by_layer": _rounded(roll_LBgg[:, 0]),
        "files": [os.path.relpath(p, out_dir) for p in files] + ["text_self_attention/"],
        "report_dir": "text_self_attention",
    }
    return _write_json(record, out_dir)


# ----------------------------------------------------------------------------- entry


def run(config, model, step, out_dir, *, index=0, question=None, layers=None, heads=None) -> dict:
    """The attention report of a vision-family run; writes `out_dir`, returns attention.json.

    Args:
      config: the run's config (`generate.load_run_config`); config.family picks the report.
      model: the restored model (`generate.restore_model`).
      step: the checkpoint step (for titles and the record).
      out_dir: output directory (created).
      index: a test-split image (VQA and CLIP: an easy-VQA test image id).
      question: VQA: the question (default the image's first test question);
        CLIP: the caption (default the image's canonical caption); ViT: unused.
      layers: layer indices drawn per layer (None = all).
      heads: heads averaged and reported (None = all).

    Returns:
      The JSON-able record also written as out_dir/attention.json.
    """
    family = config.get("family")
    if family not in FAMILIES:
        raise ValueError(f"vision_report.run reads {', '.join(FAMILIES)} runs, got {family!r}.")
    if family == "vit":
        if question is not None:
            raise ValueError("A ViT report takes no question; pass index= only.")
        return vit_run(config, model, step, out_dir, index=index, layers=layers, heads=heads)
    fn = vqa_run if family == "vqa" else clip_run
    return fn(
        config, model, step, out_dir, index=index, question=question, layers=layers, heads=heads
    )
