"""Datasets of the course: Fashion-MNIST (real IDX files), small real tabular sets, and synthetic data.

Nothing here downloads unless you are online *and* allowed to (see :func:`load_fashion_mnist`).

Fashion-MNIST is looked up in this order (the first that has all four files wins):

1. ``data_dir=...`` passed to the loader, or the ``MLCOURSE_DATA_DIR`` environment variable;
2. Debian's ``dataset-fashion-mnist`` package: ``/usr/share/datasets/fashion-mnist``
   (``sudo apt-get install dataset-fashion-mnist``);
3. the Keras cache: ``~/.keras/datasets/fashion-mnist``;
4. a download (only when ``download=True`` or ``MLCOURSE_ALLOW_DOWNLOAD`` is 1/true/yes), verified by SHA-256;
5. the embedded subset the course ships in ``datasets/fashion-mnist-subset`` (6,000 train + 1,000 test
   images, stratified, checked against its ``SHA256SUMS``), so that every notebook runs offline, on any
   laptop, in a workshop room. With ``source="auto"`` a failed download (no network) falls back to it with
   a warning.

Every file is checked: its IDX header, its size, and (for the known files) the SHA-256 of its
decompressed bytes, so a truncated or corrupt file gives a clear error instead of a silently wrong model.

Example::

    >>> from mlcourse import data
    >>> ds = data.load_fashion_mnist()          # real data if installed, else the embedded subset
    >>> ds.x_train.shape, ds.source
    ((60000, 28, 28), '/usr/share/datasets/fashion-mnist')
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import re
import shutil
import struct
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlcourse import settings

__all__ = [
    "DataError",
    "Dataset",
    "CLASS_NAMES",
    "FILES",
    "read_idx",
    "write_idx",
    "find_fashion_mnist",
    "load_fashion_mnist",
    "download_fashion_mnist",
    "load_tabular",
    "make_imbalanced",
    "make_drifting_time_series",
    "make_grouped_images",
    "stratified_subset",
    "EMBEDDED_DIR",
    "load_text_corpus",
]

CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

#: The four IDX files, with the SHA-256 and length of their *decompressed* bytes. Decompressed, because
#: distributions recompress the .gz files (Debian's differ byte-wise from upstream's), the content does not.
FILES = {
    "train_images": ("train-images-idx3-ubyte.gz",
                     "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", 47040016),
    "train_labels": ("train-labels-idx1-ubyte.gz",
                     "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", 60008),
    "test_images": ("t10k-images-idx3-ubyte.gz",
                    "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", 7840016),
    "test_labels": ("t10k-labels-idx1-ubyte.gz",
                    "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", 10008),
}
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
KERAS_CACHE_DIR = Path.home() / ".keras" / "datasets" / "fashion-mnist"
DOWNLOAD_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
#: The subset the course ships (made by ``tools/make_subset.py`` from the real files).
EMBEDDED_DIR = Path(__file__).resolve().parent.parent / "datasets" / "fashion-mnist-subset"

_HOW_TO_GET = (
    "Get the real Fashion-MNIST files in one of these ways:\n"
    "  * Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist   (files in /usr/share/datasets/fashion-mnist)\n"
    "  * online: mlcourse.data.download_fashion_mnist()   (verified by SHA-256, kept in ~/.keras/datasets)\n"
    "  * a folder with the four *-ubyte.gz files: set MLCOURSE_DATA_DIR=/that/folder or pass data_dir=...\n"
    "Or use the embedded subset the course ships: load_fashion_mnist(source='embedded')."
)

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


class DataError(RuntimeError):
    """A dataset is missing, corrupt, truncated or unknown. The message says how to fix it."""


@dataclass
class Dataset:
    """Train/test arrays plus where they came from.

    ``x_*`` are uint8 images ``(n, 28, 28)``; ``y_*`` int labels in ``0..9``; ``source`` is the folder read
    (or ``'embedded'``); ``class_names`` names the labels.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    class_names: tuple = CLASS_NAMES

    @property
    def is_full(self) -> bool:
        """True for the full 60,000 + 10,000 images, False for a subset."""
        return len(self.x_train) == 60000 and len(self.x_test) == 10000

    def __repr__(self) -> str:
        return (f"Dataset(train={self.x_train.shape}, test={self.x_test.shape}, "
                f"source={self.source!r})")


# ----------------------------------------------------------------------------------------------- IDX files
def _open(path: Path):
    return gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb")


def read_idx(path, expected_sha256: str | None = None) -> np.ndarray:
    """Read one IDX file (``.gz`` or plain) into a numpy array, checking header, size and checksum.

    Raises :class:`DataError` naming the file and what is wrong: not IDX, truncated, trailing bytes,
    corrupt gzip, or (when ``expected_sha256`` is given) a checksum mismatch.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist.\n{_HOW_TO_GET}")
    try:
        with _open(path) as f:
            raw = f.read()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path} is corrupt or truncated ({exc}). Delete it and get it again.\n"
                        f"{_HOW_TO_GET}") from exc
    if expected_sha256 is not None:
        digest = hashlib.sha256(raw).hexdigest()
        if digest != expected_sha256:
            raise DataError(f"{path}: checksum mismatch (SHA-256 of its content is {digest[:16]}..., "
                            f"expected {expected_sha256[:16]}...). The file is damaged or not the real "
                            f"Fashion-MNIST; delete it and get it again.\n{_HOW_TO_GET}")
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number {raw[:4]!r}).")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated: its header is incomplete.")
    shape = struct.unpack(">" + "I" * ndim, raw[4:header])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        kind = "truncated" if len(raw) < expected else "longer than its header says"
        raise DataError(f"{path} is {kind}: {len(raw)} bytes, the header {shape} needs {expected}. "
                        f"Delete it and get it again.")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path, array: np.ndarray) -> Path:
    """Write ``array`` (uint8) as an IDX file, gzipped when ``path`` ends in ``.gz``. Returns the path."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    path = Path(path)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    opener = (lambda p: gzip.GzipFile(p, "wb", mtime=0)) if path.suffix == ".gz" else (lambda p: open(p, "wb"))
    with opener(path) as f:
        f.write(header + array.tobytes())
    return path


# ------------------------------------------------------------------------------------------ Fashion-MNIST
def _has_all(folder: Path) -> bool:
    return all((folder / name).is_file() for name, _, _ in FILES.values())


def _candidates(data_dir) -> list[tuple[str, Path]]:
    out = []
    if data_dir is not None:
        if not isinstance(data_dir, (str, os.PathLike)):
            raise TypeError(f"data_dir must be a folder path (a str or pathlib.Path), got {type(data_dir).__name__} "
                            f"{data_dir!r}.")
        out.append(("data_dir", Path(data_dir)))
    elif settings.get("data_dir"):
        out.append(("MLCOURSE_DATA_DIR", settings.get("data_dir")))
    out += [("debian", DEBIAN_DIR), ("keras cache", KERAS_CACHE_DIR)]
    return out


def find_fashion_mnist(data_dir=None) -> Path | None:
    """Return the first folder (see the module docstring for the order) holding all four files, or None.

    An explicit ``data_dir`` (or ``MLCOURSE_DATA_DIR``) that lacks the files is an error, not skipped:
    you asked for that folder.
    """
    for label, folder in _candidates(data_dir):
        if _has_all(folder):
            return folder
        if label in ("data_dir", "MLCOURSE_DATA_DIR"):
            missing = [n for n, _, _ in FILES.values() if not (folder / n).is_file()]
            raise DataError(f"{label}={folder} lacks {', '.join(missing)}.\n{_HOW_TO_GET}")
    return None


def _read_folder(folder: Path, verify: bool) -> Dataset:
    arrays = {}
    for key, (name, sha, _) in FILES.items():
        arrays[key] = read_idx(folder / name, sha if verify else None)
    for split in ("train", "test"):
        x, y = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if x.ndim != 3 or x.shape[1:] != (28, 28) or y.ndim != 1 or len(x) != len(y):
            raise DataError(f"{folder}: {split} images {x.shape} and labels {y.shape} do not match "
                            "Fashion-MNIST's layout (n, 28, 28) / (n,).")
    return Dataset(arrays["train_images"], arrays["train_labels"].astype(np.int64),
                   arrays["test_images"], arrays["test_labels"].astype(np.int64), str(folder))


def _download_allowed(download) -> bool:
    """``download`` if given, else ``MLCOURSE_ALLOW_DOWNLOAD`` (1/true/yes or 0/false/no, any case)."""
    if download is not None:
        return bool(download)
    try:
        return settings.get("allow_download")
    except ValueError as exc:
        raise DataError(str(exc)) from None


def download_fashion_mnist(dest=None, url: str = DOWNLOAD_URL, timeout: float = 30.0) -> Path:
    """Download the four files into ``dest`` (default: the Keras cache) and verify their SHA-256.

    A file that is already there and verifies is not downloaded again. A download that fails or does not
    verify is deleted, never left half-written.
    """
    dest = Path(dest) if dest is not None else KERAS_CACHE_DIR
    dest.mkdir(parents=True, exist_ok=True)
    for name, sha, _ in FILES.values():
        target = dest / name
        if target.is_file():
            try:
                read_idx(target, sha)
                continue
            except DataError:
                pass  # damaged: fetch again below, to a temporary name first
        tmp = target.with_suffix(".part")
        try:
            with urllib.request.urlopen(url + name, timeout=timeout) as r, open(tmp, "wb") as f:
                shutil.copyfileobj(r, f)
            read_idx(tmp, sha)
        except (OSError, DataError, http.client.HTTPException, ValueError) as exc:  # URLError, timeouts too
            tmp.unlink(missing_ok=True)
            raise DataError(f"Downloading {url + name} failed: {exc}.\n{_HOW_TO_GET}") from exc
        tmp.replace(target)
    return dest


def load_fashion_mnist(source: str = "auto", data_dir=None, download: bool | None = None,
                       verify: bool = True) -> Dataset:
    """Load Fashion-MNIST as uint8 images and int labels.

    Parameters
    ----------
    source : ``"auto"`` (the full set if found, else the embedded subset, with a warning),
        ``"full"`` (the full set or an error saying how to get it) or ``"embedded"`` (the shipped subset).
    data_dir : a folder holding the four ``*-ubyte.gz`` files; overrides ``MLCOURSE_DATA_DIR``.
    download : allow a download when the files are nowhere on disk (default: ``MLCOURSE_ALLOW_DOWNLOAD``
        1/true/yes). If it fails, ``"auto"`` warns and uses the embedded subset; ``"full"`` raises.
    verify : check each file's SHA-256 (about 0.2 s for the full set).

    Lesson: 00_workflow § 1 · Use case and model interface; also used in 01_training, 02_tuning, 03_nas,
    04_dimensionality_reduction, 05_compression, 06_distributed_training, 07_distillation_ensembles, 08_deployment,
    09_runtimes.
    """
    if source not in ("auto", "full", "embedded"):
        raise DataError(f"Unknown source {source!r}: use 'auto', 'full' or 'embedded'.")
    if source == "embedded":
        return _load_embedded()
    folder = find_fashion_mnist(data_dir)
    why = "not found"
    if folder is None and _download_allowed(download):
        try:
            folder = download_fashion_mnist()
        except DataError as exc:
            if source == "full":
                raise
            why = f"not found, and the download failed ({str(exc).splitlines()[0]})"
    if folder is not None:
        return _read_folder(folder, verify)
    if source == "full":
        raise DataError("The full Fashion-MNIST was not found in "
                        f"{', '.join(str(p) for _, p in _candidates(None))}.\n{_HOW_TO_GET}")
    warnings.warn(f"Full Fashion-MNIST {why}: using the embedded 6,000/1,000 subset. " + _HOW_TO_GET,
                  stacklevel=2)
    return _load_embedded()


def _embedded_sums(path: Path) -> dict[str, str]:
    """The SHA-256 of each file of the embedded subset, from its ``SHA256SUMS`` (``<64 hex>  <name>`` lines).
    Missing, malformed or incomplete: a DataError (the subset is never loaded unchecked)."""
    fix = "Restore it from the repository (`git checkout -- datasets/`) or re-clone the course."
    if not path.is_file():
        raise DataError(f"{path} is missing, so the embedded subset cannot be verified. {fix}")
    sums = {}
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not re.fullmatch(r"[0-9a-fA-F]{64}", parts[0]):
            raise DataError(f"{path}, line {n} is malformed ({line[:80]!r}); each line must be a 64-hex-digit "
                            f"SHA-256, two spaces and a file name. {fix}")
        sums[parts[1].lstrip("*")] = parts[0].lower()
    missing = [name for name, _, _ in FILES.values() if name not in sums]
    if missing:
        raise DataError(f"{path} has no checksum for {', '.join(missing)}. {fix}")
    return sums


def _load_embedded() -> Dataset:
    if not EMBEDDED_DIR.is_dir():
        raise DataError(f"The embedded subset {EMBEDDED_DIR} is missing: this checkout is incomplete. "
                        "Re-clone the course, or run `python tools/make_subset.py` with the full files installed.")
    sums = _embedded_sums(EMBEDDED_DIR / "SHA256SUMS")
    arrays = {key: read_idx(EMBEDDED_DIR / name, sums[name]) for key, (name, _, _) in FILES.items()}
    return Dataset(arrays["train_images"], arrays["train_labels"].astype(np.int64),
                   arrays["test_images"], arrays["test_labels"].astype(np.int64), "embedded")


def stratified_subset(x: np.ndarray, y: np.ndarray, n: int, seed: int = 0):
    """Return ``n`` examples of ``(x, y)`` with the same class proportions as ``y`` (deterministic).

    ``x`` and ``y`` must have one label per example. Asking for more examples than there are returns all of
    them, with a warning that says how many that is (never silently).

    Lesson: 00_workflow § 1 · Use case and model interface; also used in 01_training, 02_tuning,
    04_dimensionality_reduction, 06_distributed_training, 08_deployment, 09_runtimes.
    """
    from sklearn.model_selection import train_test_split

    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)} labels: pass one label per example "
                         "(the same slice of both).")
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n <= 0:
        raise ValueError(f"n must be a positive whole number of examples, got {n!r}.")
    if n >= len(y):
        if n > len(y):
            warnings.warn(f"stratified_subset: asked for {n} examples but there are only {len(y)}: using all "
                          f"{len(y)}.", stacklevel=2)
        return x, y
    _, xs, _, ys = train_test_split(x, y, test_size=n, stratify=y, random_state=seed)
    return xs, ys


# ------------------------------------------------------------------------------------------------ tabular
_TABULAR = ("breast_cancer", "digits", "wine", "iris", "diabetes")


def load_tabular(name: str):
    """One of scikit-learn's bundled real datasets (no download): returns ``(X, y, feature_names)``.

    Names: ``breast_cancer``, ``digits``, ``wine``, ``iris``, ``diabetes`` (regression).

    Lesson: 04_dimensionality_reduction § 1 · The curse of dimensionality.
    """
    from sklearn import datasets as skd

    if name not in _TABULAR:
        raise DataError(f"Unknown dataset {name!r}. Available: {', '.join(_TABULAR)}.")
    bunch = getattr(skd, f"load_{name}")()
    names = list(getattr(bunch, "feature_names", [f"x{i}" for i in range(bunch.data.shape[1])]))
    return bunch.data, bunch.target, names


TEXT_CORPUS = Path(__file__).resolve().parent.parent / "datasets" / "stdlib-docstrings.csv.gz"


def load_text_corpus(path=None):
    """Real technical English the course ships: Python standard-library docstrings, labelled by package.

    Returns ``(texts, y, label_names)``: a list of strings, integer labels, and the package names
    (asyncio, email, ...). Made by ``tools/make_text_corpus.py``; the text is the PSF's (PSF licence).

    Lesson: 04_dimensionality_reduction § 7 · Truncated SVD on sparse text (latent semantic analysis).
    """
    import csv

    path = Path(path) if path is not None else TEXT_CORPUS
    if not path.is_file():
        raise DataError(f"{path} is missing: re-clone the course or run `python tools/make_text_corpus.py`.")
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, EOFError, csv.Error, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is corrupt ({exc}); re-create it with `python tools/make_text_corpus.py`.") from exc
    if not rows or set(rows[0]) != {"text", "label"}:
        raise DataError(f"{path} must be a CSV with the columns text,label.")
    names = sorted({r["label"] for r in rows})
    return [r["text"] for r in rows], np.array([names.index(r["label"]) for r in rows]), names


# ---------------------------------------------------------------------------------------------- synthetic
def make_imbalanced(n_samples: int = 20000, positive_rate: float = 0.01, n_features: int = 20,
                    class_sep: float = 1.0, seed: int = 0):
    """A binary problem with a chosen share of positives (e.g. fraud, defects): returns ``(X, y)``.

    Lesson: 00_workflow § 2 · The one metric.
    """
    from sklearn.datasets import make_classification

    if not 0 < positive_rate < 1:
        raise ValueError(f"positive_rate must be in (0, 1), got {positive_rate}.")
    return make_classification(n_samples=n_samples, n_features=n_features, n_informative=5,
                               n_redundant=2, weights=[1 - positive_rate], class_sep=class_sep,
                               flip_y=0.0, random_state=seed)


def make_drifting_time_series(n_samples: int = 3000, n_features: int = 5, drift: float = 3.0,
                              seed: int = 0):
    """A regression problem whose input distribution and relation to the target move over time.

    Returns ``(X, y, t)`` sorted by time ``t`` in ``[0, 1)``: the relation between features and target
    changes with ``t``, so a model validated on shuffled data looks better than it will be on the future.

    Lesson: 00_workflow § 3 · Splitting data: never a blind random split.
    """
    rng = np.random.default_rng(seed)
    t = np.sort(rng.random(n_samples))
    X = rng.normal(size=(n_samples, n_features)) + drift * t[:, None] * np.linspace(0.5, 1.5, n_features)
    w_start, w_end = rng.normal(size=n_features), rng.normal(size=n_features)
    w = (1 - t)[:, None] * w_start + t[:, None] * w_end
    y = (X * w).sum(axis=1) + np.sin(6 * np.pi * t) + 0.3 * rng.normal(size=n_samples)
    return X, y, t


def make_grouped_images(x: np.ndarray, y: np.ndarray, per_group: int = 5, noise: float = 10.0,
                        max_shift: int = 1, seed: int = 0):
    """Near-duplicates: each image becomes a group of ``per_group`` shifted, noisy copies.

    Like several photos of the same product or several visits of the same patient. Returns
    ``(x_aug, y_aug, groups)``; a split that puts one group on both sides leaks.

    Lesson: 00_workflow § 3 · Splitting data: never a blind random split.
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(x)
    xs, ys, gs = [], [], []
    for _ in range(per_group):
        shifts = rng.integers(-max_shift, max_shift + 1, size=(len(x), 2))  # each copy moves on its own
        copies = np.stack([np.roll(img, tuple(s), axis=(0, 1)) for img, s in zip(x, shifts)]).astype(np.float32)
        copies += rng.normal(0, noise, size=copies.shape)
        xs.append(np.clip(copies, 0, 255).astype(np.uint8))
        ys.append(y)
        gs.append(np.arange(len(y)))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(gs)
