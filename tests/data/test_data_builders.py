"""tfds builders: array_record files built once and read back; any tfds name via config."""

import pytest
import tensorflow_datasets as tfds

from attn_jax.data import build, default_data_config, load_documents, make_lm_data


def test_shakespeare_builds_once_as_array_record(tmp_path):
    folder = build("shakespeare", tmp_path)
    files = sorted(p.name for p in folder.glob("*.array_record*"))
    assert files == [
        "attn_jax_shakespeare-train.array_record-00000-of-00001",
        "attn_jax_shakespeare-validation.array_record-00000-of-00001",
    ]
    stamp = (folder / "dataset_info.json").stat().st_mtime_ns
    assert build("shakespeare", tmp_path) == folder
    assert (folder / "dataset_info.json").stat().st_mtime_ns == stamp, "rebuilt instead of reused"
    source = tfds.data_source("attn_jax_shakespeare", data_dir=str(tmp_path / "tfds"))
    assert {split: len(source[split]) for split in ("train", "validation")} == {
        "train": 34,
        "validation": 4,
    }
    ids = sorted(source["validation"][i]["id"].decode() for i in range(4))
    assert ids[2] == "macbeth"


def test_unknown_packaged_corpus():
    with pytest.raises(ValueError, match="valid: shakespeare, austen"):
        build("dickens")


def test_any_tfds_name_through_the_config(tmp_path):
    config = default_data_config()
    config.update(name="lm1b", eval_split="test", eval_batches=2, data_dir=str(tmp_path))
    with tfds.testing.mock_data(num_examples=400):
        train_iter, eval_batches_fn = make_lm_data(config, batch_size=4, seq_len=16, seed=0)
        batch = next(train_iter)
        evals = eval_batches_fn()
    assert batch["inputs"].shape == (4, 16)
    assert batch["inputs"].max() < 256
    assert len(evals) == 2
    assert evals[0]["targets"].shape == (4, 16)


def test_missing_text_key_lists_the_fields(tmp_path):
    with tfds.testing.mock_data(num_examples=3):
        with pytest.raises(KeyError, match="fields: label, text"):
            load_documents("imdb_reviews", "train", root=tmp_path, text_key="review")
