"""An on-disk cache of image features, keyed by the file's content and the model.

What makes ``evaluate`` resumable: an interrupted run keeps every finished batch, and a second
run over the same files with the same model skips the image encoder. One ``.npz`` per image
holds its original's and its views' features (float16, which changes cosines by about 1e-3);
a run that wants a view a file lacks encodes that image again and rewrites the file.

Files are written atomically (a temporary name, then a rename) so that an interrupted write
never leaves a half file, and read with ``allow_pickle=False``: nothing here is ever unpickled.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core.errors import ImageError, InputError
from ..core.files import read_bytes
from ..core.limits import LIMITS
from .models import LoadedModel

ORIGINAL = "original"      # the key of the unaugmented image, beside the view ids
CACHE_HOME = Path.home() / ".cache" / "zsdemo"     # what zsdemo keeps between runs (never the current folder)
DEFAULT_DIR = Path(os.environ.get("ZSDEMO_FEATURE_CACHE", CACHE_HOME / "features"))


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_image_file(path: str | os.PathLike, name: str) -> tuple[bytes, str]:
    """An image file's bytes (within the upload limit) and their digest, the key of its cached
    features and of the leakage check; ImageError when it cannot be read."""
    data = read_bytes(path, name, LIMITS.upload_bytes, ImageError)
    return data, file_digest(data)


def model_key(loaded: LoadedModel) -> str:
    """What the features depend on: the weights (identity), precision and input size."""
    text = f"{loaded.identity}|{loaded.precision}|{loaded.image_size}|{loaded.preprocess!r}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class FeatureStore:
    """Features of (file content, view) for one model, under ``root/<model key>/``."""

    def __init__(self, root: str | Path, loaded: LoadedModel) -> None:
        self.folder = Path(root) / model_key(loaded)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / "MODEL.txt").write_text(f"{loaded.identity}\n{loaded.precision}\n", encoding="utf-8")
        except OSError as e:   # a file of that name, no permission, a read-only disk...
            raise InputError(f"Cannot use {str(root)!r} as the feature cache: {e.strerror or e}. Give a folder "
                             "(--cache) that can be created, or --no-cache.") from None

    def _path(self, digest: str) -> Path:
        return self.folder / digest[:2] / f"{digest}.npz"

    def get(self, digest: str, keys: Sequence[str]) -> dict[str, np.ndarray] | None:
        """The features for every key, or None when the file lacks any (or is damaged)."""
        path = self._path(digest)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                if not all(k in data.files for k in keys):
                    return None
                return {k: data[k].astype(np.float32) for k in keys}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError):
            return None   # a damaged cache file is recomputed, never fatal

    def put(self, digest: str, features: dict[str, np.ndarray]) -> None:
        path = self._path(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **{k: v.astype(np.float16) for k, v in features.items()})
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
