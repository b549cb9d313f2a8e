"""Every data-set spec form, built here in small form, through the one preprocessing path."""

import pickle

import numpy as np
import pytest
from PIL import Image

from mdnet_deploy.artifact import Preprocessing
from mdnet_deploy.data import load_dataset, preprocess, select_subset
from mdnet_deploy.errors import DataError


def _cifar10(root, n=6):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names}, f)
    rng = np.random.default_rng(0)
    for name in ["data_batch_1", "data_batch_2", "test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 255, (n, 3072), dtype=np.uint8), b"labels": list(range(n))}, f)
    return folder


def _cifar100(root, n=5):
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    with open(folder / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [f"c{i}".encode() for i in range(100)], b"coarse_label_names": []}, f)
    rng = np.random.default_rng(1)
    for name in ["train", "test"]:
        with open(folder / name, "wb") as f:
            pickle.dump(
                {
                    b"data": rng.integers(0, 255, (n, 3072), dtype=np.uint8),
                    b"fine_labels": [3] * n,
                    b"coarse_labels": [0] * n,
                },
                f,
            )
    return folder


def test_digits_split_is_deterministic_and_disjoint():
    train, test = load_dataset("digits:train"), load_dataset("digits")
    assert len(train) + len(test) == 1797 and len(test) == 359
    assert train.images.shape[1:] == (32, 32, 3) and train.images.dtype == np.uint8
    assert load_dataset("digits").digest() == test.digest()
    assert test.num_classes == 10


def test_digits_read_from_the_csv_equal_scikit_learns_loader():
    """The bundled CSV is read without importing scikit-learn; it must be exactly what load_digits returns."""
    from sklearn.datasets import load_digits

    from mdnet_deploy.data.dataset import digits_arrays

    images, labels = digits_arrays()
    bunch = load_digits()
    assert np.array_equal(images, bunch.images) and np.array_equal(labels, bunch.target)


def test_cifar10_folder_and_parent(tmp_path):
    folder = _cifar10(tmp_path)
    test = load_dataset(str(tmp_path))  # the parent folder works too
    assert len(test) == 6 and test.class_names[0] == "airplane"
    assert len(load_dataset(f"{folder}:train")) == 12
    # pixel layout: row-major RGB planes -> HWC
    with open(folder / "test_batch", "rb") as f:
        raw = pickle.load(f)[b"data"]
    assert np.array_equal(test.images[0, :, :, 0].reshape(-1), raw[0, :1024])


def test_cifar100_folder(tmp_path):
    folder = _cifar100(tmp_path)
    ds = load_dataset(str(folder))
    assert ds.num_classes == 100 and set(ds.labels) == {3}


def test_image_folder_labels_and_skips(tmp_path):
    for cls, color in [("cat", (255, 0, 0)), ("dog", (0, 255, 0))]:
        (tmp_path / cls).mkdir()
        for i in range(2):
            Image.new("RGB", (40, 48), color).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    ds = load_dataset(str(tmp_path), size=(32, 32))
    assert ds.class_names == ["cat", "dog"] and list(ds.labels) == [0, 0, 1, 1]
    assert ds.images.shape == (4, 32, 32, 3) and len(ds.skipped) == 1
    (tmp_path / "labels.txt").write_text("dog\ncat\n")
    assert list(load_dataset(str(tmp_path)).labels) == [1, 1, 0, 0]


def test_npz_uint8_and_float(tmp_path):
    x = np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", x=x, y=np.arange(4), labels=np.array(["a", "b", "c", "d"]))
    ds = load_dataset(str(tmp_path / "a.npz"))
    assert ds.class_names == ["a", "b", "c", "d"]
    f = preprocess(ds.images, Preprocessing())
    np.savez(tmp_path / "f.npz", x=f, y=np.arange(4))
    assert np.array_equal(preprocess(load_dataset(str(tmp_path / "f.npz")).images, Preprocessing()), f)


def test_preprocess_resizes_and_normalises():
    img = np.full((1, 16, 16, 3), 255, np.uint8)
    prep = Preprocessing(mean=(0.5, 0.5, 0.5), std=(0.5, 0.25, 0.5))
    x = preprocess(img, prep)
    assert x.shape == (1, 3, 32, 32) and x.dtype == np.float32
    assert np.allclose(x[0, 0], 1.0) and np.allclose(x[0, 1], 2.0)


def _mkdir(path):
    path.mkdir()
    return path


def _write(path):
    path.write_text("x")
    return path


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda p: p / "missing", "does not exist"),
        (lambda p: _mkdir(p / "empty"), "no class sub-folders"),
        (lambda p: _write(p / "f.txt"), "not an .npz"),
    ],
)
def test_bad_specs(tmp_path, make, match):
    with pytest.raises(DataError, match=match):
        load_dataset(str(make(tmp_path)))


def test_folder_without_images_is_empty(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "readme.txt").write_text("hi")
    with pytest.raises(DataError, match="holds no images"):
        load_dataset(str(tmp_path))


def test_class_balanced_subset_is_deterministic():
    ds = load_dataset("digits:train")
    a, b = select_subset(ds, 50, seed=3), select_subset(ds, 50, seed=3)
    assert np.array_equal(a.labels, b.labels) and np.bincount(a.labels).tolist() == [5] * 10
    assert select_subset(ds, 10_000) is ds
