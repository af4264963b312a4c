"""easy-VQA (attn_jax.data.vqa): exact images and questions, qtypes, per-image attributes."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from attn_jax.data import vqa

# sha256 of the decoded uint8[64, 64, 3] RGB bytes and the questions of two images,
# measured on the easy_vqa 1.0 wheel's PNGs and questions.json (PIL) on 2026-12-02.
_KNOWN = {
    ("train", 0): (
        "e4c23ebcededfda7bf1b4e74aedd8aa96bce4e5ac544d61511e1c73f7680123c",
        ("rectangle", "blue"),
        [
            ("what is the blue shape?", "rectangle"),
            ("what color is the shape?", "blue"),
            ("does the image contain a rectangle?", "yes"),
            ("is there a triangle in the image?", "no"),
            ("is there a black shape?", "no"),
            ("does the image not contain a gray shape?", "yes"),
            ("is there a red shape in the image?", "no"),
            ("does the image not contain a red shape?", "yes"),
            ("is there not a blue shape?", "no"),
            ("is there not a blue shape in the image?", "no"),
            ("is there not a yellow shape?", "yes"),
            ("is a teal shape present?", "no"),
        ],
    ),
    ("test", 999): (
        "41ce9265984504f8e5cd48e2aafb7d4491a635e770e4e7ad223b34358981f632",
        ("triangle", "red"),
        [
            ("what color is the triangle?", "red"),
            ("does the image contain a rectangle?", "no"),
            ("is no rectangle present?", "yes"),
            ("is a triangle present?", "yes"),
            ("does the image contain a red shape?", "yes"),
            ("is a green shape present?", "no"),
            ("is there a yellow shape in the image?", "no"),
            ("is a brown shape present?", "no"),
            ("is there not a brown shape in the image?", "yes"),
        ],
    ),
}
# (images, questions, yes/no, shape, colour questions) per split, counted on the wheel.
_COUNTS = {"train": (4000, 38575, 28407, 5002, 5166), "test": (1000, 9673, 7136, 1257, 1280)}


def _answer(question: str, shape: str, color: str) -> str:
    """The answer a question must have about an image of `shape` and `color`, read
    from the question's wording alone (independent of vqa's template parser)."""
    if question.startswith(("what color", "what is the color")):
        return color
    if question.startswith("what"):
        return shape
    named = [w for w in vqa.SHAPES + vqa.COLORS if f" {w} " in f" {question[:-1]} "]
    assert len(named) == 1, question
    present = named[0] in (shape, color)
    negated = " not " in question or question.startswith("is no ")
    return "yes" if present != negated else "no"


@pytest.mark.parametrize("split", vqa.SPLITS)
def test_load_vqa_shapes_dtypes_and_counts(split):
    d = vqa.load_vqa(split)
    n_img, n_q, n_yes_no, n_shape, n_color = _COUNTS[split]
    assert d["image"].shape == (n_img, 64, 64, 3)
    assert d["image"].dtype == np.uint8
    assert len(d["question"]) == n_q
    assert all(isinstance(q, str) for q in d["question"][:10])
    for key in ("answer", "image_id", "qtype"):
        assert d[key].shape == (n_q,), key
        assert d[key].dtype == np.int32, key
    assert d["image_id"].min() == 0
    assert d["image_id"].max() == n_img - 1
    np.testing.assert_array_equal(np.bincount(d["qtype"]), [n_yes_no, n_shape, n_color])
    # The qtype is the answer's kind.
    words = np.array(vqa.ANSWERS)[d["answer"]]
    kind = np.where(np.isin(words, ["yes", "no"]), 0, np.where(np.isin(words, vqa.SHAPES), 1, 2))
    np.testing.assert_array_equal(d["qtype"], kind)
    assert len(vqa.ANSWERS) == 13
    assert vqa.QTYPES == ("yes/no", "shape", "color")


def test_yes_no_fraction_of_test():
    d = vqa.load_vqa("test")
    assert np.mean(d["qtype"] == 0) == pytest.approx(7136 / 9673)
    assert 0.73 < np.mean(d["qtype"] == 0) < 0.74


@pytest.mark.parametrize(("split", "i"), list(_KNOWN))
def test_known_images_and_questions_exact(split, i):
    digest, (shape, color), questions = _KNOWN[(split, i)]
    d = vqa.load_vqa(split)
    assert hashlib.sha256(d["image"][i].tobytes()).hexdigest() == digest
    got = [
        (q, vqa.ANSWERS[a])
        for q, a, j in zip(d["question"], d["answer"], d["image_id"], strict=True)
        if j == i
    ]
    assert got == questions
    attrs = vqa.image_attributes(split)
    assert (vqa.SHAPES[attrs["shape"][i]], vqa.COLORS[attrs["color"][i]]) == (shape, color)


@pytest.mark.parametrize("split", vqa.SPLITS)
def test_attributes_explain_every_answer(split):
    d, attrs = vqa.load_vqa(split), vqa.image_attributes(split)
    shape = np.array(vqa.SHAPES)[attrs["shape"]]
    color = np.array(vqa.COLORS)[attrs["color"]]
    assert attrs["shape"].dtype == np.int32
    assert attrs["color"].dtype == np.int32
    assert attrs["shape"].shape == attrs["color"].shape == (len(d["image"]),)
    wrong = [
        (q, vqa.ANSWERS[a], j)
        for q, a, j in zip(d["question"], d["answer"], d["image_id"], strict=True)
        if _answer(q, shape[j], color[j]) != vqa.ANSWERS[a]
    ]
    assert not wrong, wrong[:5]
    # Every shape and colour occurs, roughly evenly.
    assert np.bincount(attrs["shape"]).min() > len(shape) / 3 * 0.8
    assert np.bincount(attrs["color"]).min() > len(color) / 8 * 0.8


def _draw(shape: str, rgb, bg, y0: int, x0: int, size: int) -> np.ndarray:
    """A 64x64 image of one flat-coloured upright shape on a flat background."""
    yy, xx = np.mgrid[:64, :64]
    dy, dx = yy - y0, xx - x0
    inside = {
        "rectangle": (dy >= 0) & (dy < size) & (dx >= 0) & (dx < size // 2 + 3),
        "circle": (dy - size / 2 + 0.5) ** 2 + (dx - size / 2 + 0.5) ** 2 <= (size / 2) ** 2,
        "triangle": (dy >= 0) & (dy < size) & (np.abs(dx - size / 2) <= dy / 2),
    }[shape]
    image = np.empty((64, 64, 3), np.uint8)
    image[:] = bg
    image[inside] = rgb
    return image


def _fake(monkeypatch, images, questions):
    """Makes vqa.load_vqa return these images and (question, answer, image id) triples."""
    fake = {
        "image": np.stack(images),
        "question": [q for q, _, _ in questions],
        "answer": np.array([vqa.ANSWERS.index(a) for _, a, _ in questions], np.int32),
        "image_id": np.array([i for _, _, i in questions], np.int32),
    }
    monkeypatch.setattr(vqa, "load_vqa", lambda split, root=None: fake)


_PALETTE = {
    c: ((37 * k) % 256, (91 * k + 40) % 256, (53 * k + 7) % 200) for k, c in enumerate(vqa.COLORS)
}


def test_attributes_from_pixels_where_questions_do_not_pin_them(monkeypatch, tmp_path):
    images, questions = [], []
    shapes = ["circle", "rectangle", "triangle"]
    # 8 images whose questions pin both attributes, one per colour (the palette)...
    for k, color in enumerate(vqa.COLORS):
        shape = shapes[k % 3]
        images.append(_draw(shape, _PALETTE[color], (240, 235, 230), 5 + k, 8, 20 + k))
        questions += [("what color is the shape?", color, k), ("what shape is present?", shape, k)]
    # ...and 3 whose questions only rule values out.
    hidden = [("triangle", "teal"), ("circle", "brown"), ("rectangle", "gray")]
    for k, (shape, color) in enumerate(hidden, start=8):
        images.append(_draw(shape, _PALETTE[color], (250, 245, 250), 20, 30 - k, 16 + 2 * k))
        questions.append(("is there a red shape?", "no", k))
    _fake(monkeypatch, images, questions)
    attrs = vqa.image_attributes("train", root=tmp_path)
    got = [(vqa.SHAPES[s], vqa.COLORS[c]) for s, c in zip(attrs["shape"], attrs["color"])]
    assert got[8:] == hidden
    assert got[:8] == [(shapes[k % 3], c) for k, c in enumerate(vqa.COLORS)]


def test_attributes_pixels_that_disagree_with_questions_raise(monkeypatch, tmp_path):
    images, questions = [], []
    for k, color in enumerate(vqa.COLORS):
        images.append(_draw("circle", _PALETTE[color], (240, 240, 240), 10, 10, 24))
        questions.append(("what color is the shape?", color, k))
    # Image 0's questions say triangle, its pixels show a circle; image 1 is unpinned.
    questions.append(("what shape is present?", "triangle", 0))
    _fake(monkeypatch, images, questions)
    with pytest.raises(ValueError, match="pixel shapes disagree"):
        vqa.image_attributes("train", root=tmp_path)


@pytest.mark.parametrize(
    ("questions", "match"),
    [
        ([("what color is the shape?", "red", 0), ("is there a red shape?", "no", 0)], "contra"),
        ([("what shape is present?", "circle", 0), ("is a triangle present?", "yes", 0)], "more"),
        ([("what color is the shape?", "red", 0), ("is there not a blue shape?", "no", 0)], "more"),
    ],
)
def test_attributes_contradictions_raise(monkeypatch, tmp_path, questions, match):
    image = _draw("circle", (255, 0, 0), (240, 240, 240), 10, 10, 24)
    _fake(monkeypatch, [image], questions)
    with pytest.raises(ValueError, match=match):
        vqa.image_attributes("train", root=tmp_path)


def test_vocabularies_match_the_package():
    lines = (vqa.package_dir() / "answers.txt").read_text().split()
    assert vqa.ANSWERS == tuple(lines)  # the package's order
    assert sorted(vqa.SHAPES + vqa.COLORS + ("yes", "no")) == sorted(lines)


def test_unknown_split():
    with pytest.raises(ValueError, match="valid: train, test"):
        vqa.load_vqa("validation")
    with pytest.raises(ValueError, match="valid: train, test"):
        vqa.image_attributes("val")


def test_no_stray_test_package_imported():
    # The easy_vqa wheel installs a top-level `test` package; nothing of ours imports it.
    code = (
        "import sys; import attn_jax.data.vqa, attn_jax.data.image_builders; "
        "assert 'test' not in sys.modules and 'easy_vqa' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
