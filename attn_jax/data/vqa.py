"""easy-VQA (Zhou 2020), a small synthetic visual question answering set, read offline.

Each 64x64 RGB image shows one shape (circle, rectangle or triangle) in one of eight
colours on a random light background; each question about it is answered by one of
13 words. The data ship in the PyPI `easy_vqa` wheel (a dependency):
`easy_vqa/data/{train,test}/questions.json` (a list of [question, answer, image id])
and `.../images/<id>.png`. (The wheel also installs a stray top-level `test`
package; nothing here imports it.)

Counts, measured on easy_vqa 1.0 (2026-12-02):

- train: 4,000 images, 38,575 questions; test: 1,000 images, 9,673 questions. This is
  the package README's count. There are no duplicates: every (question, image) pair
  occurs once, so nothing is dropped. Issue 17's 38,285 / 9,599 (and 28,003 / 7,076
  yes/no) are the figures of the GitHub repository's top-level README
  (vzhou842/easy-VQA), which describe a later regeneration of the data (its question 0
  differs from the wheel's); no dedup of the wheel's data gives them (`duplicate_counts`).
- yes/no questions: 28,407 train (73.6%), 7,136 test (73.8%); the rest ask for the
  shape (train 5,002, test 1,257) or the colour (train 5,166, test 1,280).

Every question follows one of 24 templates; `_parse` reads each one's meaning (what
it asks, the shape or colour it names, negation), checks the answer's type agrees with
the template, and `image_attributes` derives each image's shape and colour from its
questions, checking that they never contradict each other. The questions pin the
shape of all but 163 train / 46 test images and the colour of all but 288 / 78 (a
yes/no "no" only rules one value out); those are read from the pixels (the shape's
bounding-box fill fraction; the shape colour against the palette), a reading that
agrees with the questions on every image they pin.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import numpy as np

from attn_jax.data import sources

ANSWERS: tuple[str, ...] = (  # the package's answers.txt order
    "circle",
    "green",
    "red",
    "gray",
    "yes",
    "teal",
    "black",
    "rectangle",
    "yellow",
    "triangle",
    "brown",
    "blue",
    "no",
)
QTYPES = ("yes/no", "shape", "color")
SHAPES = ("circle", "rectangle", "triangle")
COLORS = ("black", "blue", "brown", "gray", "green", "red", "teal", "yellow")
SPLITS = ("train", "test")
IMAGE_SIZE = 64

_WORD = re.compile(r"\b(" + "|".join(SHAPES + COLORS) + r")\b")


def package_dir() -> Path:
    """The `easy_vqa/data` folder of the installed wheel (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("easy_vqa")
    if spec is None or not spec.submodule_search_locations:
        raise sources.MissingDataError(
            "easy-VQA needs the PyPI package easy_vqa==1.0 (a dependency): run `make data`, "
            "which installs the dependencies and builds the dataset."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"Unknown easy-VQA split {split!r}; valid: {', '.join(SPLITS)}.")


def read_questions(split: str) -> list[tuple[str, str, int]]:
    """The raw [question, answer, image id] triples of one split, in file order."""
    _check_split(split)
    with open(package_dir() / split / "questions.json") as f:
        return [(str(q), str(a), int(i)) for q, a, i in json.load(f)]


def read_images(split: str, limit: int | None = None) -> np.ndarray:
    """uint8[I, 64, 64, 3] from the PNGs: row i is `images/<i>.png`; the ids must be
    exactly 0..I-1. `limit` keeps only the first `limit` images (tests)."""
    from PIL import Image  # local: only reading the raw PNGs needs Pillow

    _check_split(split)
    folder = package_dir() / split / "images"
    ids = sorted(int(p.stem) for p in folder.glob("*.png"))
    if ids != list(range(len(ids))):
        raise ValueError(f"{folder}: image ids are not 0..{len(ids) - 1}.")
    ids = ids[:limit]
    image_IHWC = np.empty((len(ids), IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    for i in ids:
        with Image.open(folder / f"{i}.png") as im:
            image_IHWC[i] = np.asarray(im.convert("RGB"))
    return image_IHWC


def _parse(question: str, answer: str) -> tuple[str, str | None, bool]:
    """(qtype, named word or None, negated) of one question, checked against its answer.

    Templates: "what shape ...?"/"what is the <colour> shape?" ask for the shape;
    "what color ...?"/"what is the color of ...?" for the colour; the other 16 are
    yes/no questions about one named shape or colour, negated by "not" or "is no".
    """
    words = _WORD.findall(question)
    if len(words) > 1:
        raise ValueError(f"easy-VQA question {question!r} names more than one attribute.")
    named = words[0] if words else None
    if question.startswith("what "):
        asks_color = question.startswith(("what color", "what is the color"))
        qtype = "color" if asks_color else "shape"
        negated = False
    else:
        qtype = "yes/no"
        negated = " not " in question or question.startswith("is no ")
        if named is None:
            raise ValueError(f"easy-VQA yes/no question {question!r} names no attribute.")
    kind = "yes/no" if answer in ("yes", "no") else "shape" if answer in SHAPES else "color"
    if answer not in ANSWERS or kind != qtype:
        raise ValueError(
            f"easy-VQA question {question!r} is a {qtype} template but has answer {answer!r}."
        )
    return qtype, named, negated


def parse_questions(split: str) -> dict:
    """The questions of one split from questions.json, in file order, checked.

    Returns:
      {"question": list[str], "answer": int32[Q], "image_id": int32[Q], "qtype": int32[Q]}.
    """
    triples = read_questions(split)
    return {
        "question": [q for q, _, _ in triples],
        "answer": np.array([ANSWERS.index(a) for _, a, _ in triples], np.int32),
        "image_id": np.array([i for _, _, i in triples], np.int32),
        "qtype": np.array([QTYPES.index(_parse(q, a)[0]) for q, a, _ in triples], np.int32),
    }


@functools.cache
def _load(split: str, root: Path) -> dict:
    from attn_jax.data import image_builders  # local: the builders import this module

    image = image_builders.read_split("easy_vqa/images", split, root)["image"]
    q = image_builders.read_split("easy_vqa/questions", split, root)
    out = {
        "image": image,
        "question": tuple(q["question"]),
        "answer": q["answer"].astype(np.int32),
        "image_id": q["image_id"].astype(np.int32),
        "qtype": q["qtype"].astype(np.int32),
    }
    if out["image_id"].min() < 0 or out["image_id"].max() >= len(image):
        raise ValueError(f"easy-VQA {split} in {root}: a question points at a missing image.")
    for v in out.values():
        if isinstance(v, np.ndarray):
            v.flags.writeable = False  # shared by every caller (cached)
    return out


def load_vqa(split: str, root: str | Path | None = None) -> dict:
    """One split of easy-VQA: the images once, and the questions pointing into them.

    Read back from the tfds array_record files (attn_jax.data.image_builders), built
    from the `easy_vqa` wheel on first use; cached per (split, root) in the process.

    Args:
      split: "train" or "test".
      root: data root (default `sources.data_root()`); the files live in `root/tfds`.

    Returns:
      {"image": uint8[I, 64, 64, 3] (row i is image id i), "question": list[str] of
      length Q, "answer": int32[Q] (index into ANSWERS), "image_id": int32[Q],
      "qtype": int32[Q] (index into QTYPES)}. The arrays are read-only (cached).
    """
    _check_split(split)
    out = _load(split, Path(root).resolve() if root else sources.data_root())
    return {**out, "question": list(out["question"])}


def image_attributes(split: str, root: str | Path | None = None) -> dict[str, np.ndarray]:
    """Each image's shape and colour, derived from its questions.

    A "what shape/colour" question gives the attribute (and the one it names, e.g.
    "what is the blue shape?" -> circle says the colour is blue); a yes/no question
    about a named attribute says it is present (yes, or no when negated) or absent.
    A value is also pinned when every other one is ruled out. Every image must end
    with at most one shape and one colour, consistent with all its questions; where
    no question pins an attribute (easy_vqa 1.0: 163 train / 46 test shapes, 288 / 78
    colours) it is read from the pixels (`_shape_from_pixels`, `_color_from_pixels`),
    after checking that the pixel reading agrees on every image the questions pin.
    Cached per (split, root) in the process; the arrays are read-only.

    Returns:
      {"shape": int32[I] (index into SHAPES), "color": int32[I] (index into COLORS)}.

    Raises:
      ValueError: questions contradict each other, an image has two shapes or two
        colours, or the pixel reading disagrees with the questions.
    """
    _check_split(split)
    return _attributes(split, Path(root).resolve() if root else sources.data_root())


@functools.cache
def _attributes(split: str, root: Path) -> dict[str, np.ndarray]:
    d = load_vqa(split, root)
    n = len(d["image"])
    # present[i, w]: +1 known present, -1 known absent, 0 unknown; w over SHAPES+COLORS.
    vocab = SHAPES + COLORS
    present = np.zeros((n, len(vocab)), np.int8)

    def mark(i: int, word: str, value: int, question: str) -> None:
        w = vocab.index(word)
        if present[i, w] == -value:
            raise ValueError(
                f"easy-VQA {split} image {i}: {question!r} contradicts an earlier question "
                f"about {word!r}."
            )
        present[i, w] = value

    for question, a, i in zip(d["question"], d["answer"], d["image_id"], strict=True):
        answer = ANSWERS[a]
        qtype, named, negated = _parse(question, answer)
        if qtype == "yes/no":
            mark(i, named, 1 if (answer == "yes") != negated else -1, question)
        else:
            mark(i, answer, 1, question)
            if named is not None:
                mark(i, named, 1, question)

    out = {}
    for key, names in (("shape", SHAPES), ("color", COLORS)):
        block = present[:, [vocab.index(w) for w in names]]
        many = np.flatnonzero((block == 1).sum(1) > 1)
        if many.size:
            raise ValueError(f"easy-VQA {split} image {many[0]} has more than one {key}.")
        none = np.flatnonzero((block == -1).all(1))
        if none.size:
            raise ValueError(
                f"easy-VQA {split} image {none[0]}: its questions rule out every {key}."
            )
        known = (block == 1).any(1)
        # Only one candidate left (every other ruled out) also pins the attribute.
        only = (block != -1).sum(1) == 1
        value = np.where(known, block.argmax(1), np.where(only, (block != -1).argmax(1), -1))
        out[key] = value.astype(np.int32)
    if (out["shape"] < 0).any() or (out["color"] < 0).any():
        rgb_I3, fill_I = _pixel_stats(d["image"])
    pixels = {
        "shape": lambda: _shape_from_pixels(fill_I, out["shape"]),
        "color": lambda: _color_from_pixels(rgb_I3, out["color"]),
    }
    for key in ("shape", "color"):
        missing = out[key] < 0
        if missing.any():
            guess = pixels[key]()
            names = SHAPES if key == "shape" else COLORS
            block = present[:, [vocab.index(w) for w in names]]
            ruled_out = np.flatnonzero(block[np.arange(n), guess] == -1)
            if ruled_out.size:
                raise ValueError(
                    f"easy-VQA {split} image {ruled_out[0]}: its pixels say "
                    f"{names[guess[ruled_out[0]]]!r}, which its questions rule out."
                )
            out[key] = np.where(missing, guess, out[key]).astype(np.int32)
    for v in out.values():
        v.flags.writeable = False
    return out


def _pixel_stats(image_IHWC: np.ndarray, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(shape RGB int[I, 3], bounding-box fill fraction float[I]) of every image.

    The background is each image's most common RGB value and the shape's colour the
    next most common (the shape is one flat palette colour with anti-aliased edges);
    the shape's pixels are those nearer its colour than the background's. Vectorised
    over chunks of images (a per-image np.unique loop takes seconds on 4,000).
    """
    rgb_I3, fill_I = [], []
    weights = np.array([1 << 16, 1 << 8, 1], np.int32)
    for start in range(0, len(image_IHWC), chunk):
        im_NP3 = image_IHWC[start : start + chunk].reshape(-1, IMAGE_SIZE**2, 3).astype(np.int32)
        n, p = im_NP3.shape[:2]
        key_NP = np.sort(im_NP3 @ weights, axis=1)
        new_NP = np.ones((n, p), bool)
        new_NP[:, 1:] = key_NP[:, 1:] != key_NP[:, :-1]
        run_NP = np.cumsum(new_NP, axis=1) - 1  # run index of each sorted pixel
        rows_N1 = np.arange(n)[:, None]
        count_NR = np.bincount((rows_N1 * p + run_NP).ravel(), minlength=n * p).reshape(n, p)
        value_NR = np.zeros((n, p), np.int32)
        value_NR[rows_N1, run_NP] = key_NP
        bg = count_NR.argmax(1)  # ties: the smallest RGB key, as np.unique + stable sort
        count_NR[np.arange(n), bg] = -1
        fg = count_NR.argmax(1)
        fg_N3 = _unpack(value_NR[np.arange(n), fg])
        bg_N3 = _unpack(value_NR[np.arange(n), bg])
        d_fg = ((im_NP3 - fg_N3[:, None]) ** 2).sum(-1)
        d_bg = ((im_NP3 - bg_N3[:, None]) ** 2).sum(-1)
        mask_NHW = (d_fg < d_bg).reshape(n, IMAGE_SIZE, IMAGE_SIZE)
        rows_NH, cols_NW = mask_NHW.any(2), mask_NHW.any(1)
        box_N = _extent(rows_NH) * _extent(cols_NW)
        rgb_I3.append(fg_N3)
        fill_I.append(mask_NHW.sum((1, 2)) / box_N)
    return np.concatenate(rgb_I3), np.concatenate(fill_I)


def _unpack(key_N: np.ndarray) -> np.ndarray:
    return np.stack([key_N >> 16, (key_N >> 8) & 255, key_N & 255], axis=-1)


def _extent(any_NL: np.ndarray) -> np.ndarray:
    """Length from the first to the last True of each row (0 if none)."""
    length = any_NL.shape[1]
    first = any_NL.argmax(1)
    last = length - 1 - any_NL[:, ::-1].argmax(1)
    return np.where(any_NL.any(1), last - first + 1, 0)


# Fraction of the shape's bounding box it fills: a rectangle ~1, a circle ~pi/4, an
# upright triangle ~1/2. On the images whose shape the questions give (easy_vqa 1.0)
# the ranges are triangle 0.50-0.66, circle 0.74-0.91, rectangle 0.96-1.0.
_FILL_CUTS = (0.70, 0.93)


def _shape_from_pixels(fill_I: np.ndarray, shape_I: np.ndarray) -> np.ndarray:
    """Shape index of every image from the fill fraction of its bounding box; checks
    that it agrees with the questions wherever they give the shape."""
    order = (SHAPES.index("triangle"), SHAPES.index("circle"), SHAPES.index("rectangle"))
    guess = np.asarray(order)[np.searchsorted(_FILL_CUTS, fill_I)]
    _check_agrees("shapes", guess, shape_I)
    return guess.astype(np.int32)


def _color_from_pixels(rgb_I3: np.ndarray, color_I: np.ndarray) -> np.ndarray:
    """Colour index of every image from its shape's RGB, against a palette learned on
    the images whose colour the questions give (the mode RGB of each colour); checks
    that the pixel reading agrees on all of those."""
    palette = np.empty((len(COLORS), 3), np.int64)
    for c in range(len(COLORS)):
        rgb, count = np.unique(rgb_I3[color_I == c], axis=0, return_counts=True)
        if not len(rgb):
            raise ValueError(f"easy-VQA: no image's questions give the colour {COLORS[c]!r}.")
        palette[c] = rgb[count.argmax()]
    guess = ((rgb_I3[:, None, :] - palette[None]) ** 2).sum(-1).argmin(1)
    _check_agrees("colours", guess, color_I)
    return guess.astype(np.int32)


def _check_agrees(what: str, guess_I: np.ndarray, known_I: np.ndarray) -> None:
    wrong = np.flatnonzero((known_I >= 0) & (guess_I != known_I))
    if wrong.size:
        raise ValueError(
            f"easy-VQA: pixel {what} disagree with the questions on {wrong.size} images "
            f"(first {wrong[0]})."
        )


def duplicate_counts(split: str) -> dict[str, int]:
    """How many questions remain after dropping duplicates, by a few notions of one."""
    triples = read_questions(split)
    return {
        "questions": len(triples),
        "unique (question, answer, image)": len(set(triples)),
        "unique (question, image)": len({(q, i) for q, _, i in triples}),
    }
