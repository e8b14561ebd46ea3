"""WordNet data: finding it, installing it offline, loading NLTK's reader once per process.

Finding the data, in order: NLTK's own data paths (where ``nltk.download("wordnet")`` puts it);
Debian's ``wordnet-base`` + ``wordnet-sense-index`` (``/usr/share/wordnet``, or ``$WNSEARCHDIR``),
copied into ``~/nltk_data`` (or the first ``$NLTK_DATA`` folder) with the ``lexnames`` file those
packages lack, because NLTK refuses corpora outside its data paths, symlinks included; and last
``nltk.download`` (skipped when ``ZSDEMO_WORDNET_DOWNLOAD=0``). ``python -m zsdemo setup-wordnet``
runs the same steps ahead of time; install.sh calls it.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

from ..core import forksafe
from ..core.errors import ZsdemoError

SYSTEM_DIRS = ("/usr/share/wordnet", "/usr/share/WordNet-3.0/dict", "/usr/local/WordNet-3.0/dict")
SYSTEM_FILES = (
    "data.noun", "data.verb", "data.adj", "data.adv",
    "index.noun", "index.verb", "index.adj", "index.adv", "index.sense",
    "noun.exc", "verb.exc", "adj.exc", "adv.exc", "cntlist.rev",
)
# WordNet 3.0's lexicographer files in number order (man page lexnames(5WN)); NLTK needs them as
# the file ``lexnames``, which Debian's packages do not ship.
LEXNAMES: tuple[str, ...] = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event",
    "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object",
    "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
    "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
    "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition",
    "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
    "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl",
)
_LEX_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
DOWNLOAD_TIMEOUT_S = 20.0


class WordNetUnavailable(ZsdemoError):
    """No WordNet data could be found or installed."""


# ---------------------------------------------------------------------------------------------
# Finding the data

LOCK = threading.RLock()      # one load at a time (the sense module's reset takes it too)
_reader: Any = None
_failure: str | None = None


def _new_lock_after_fork() -> None:
    global LOCK
    LOCK = threading.RLock()     # see forksafe: a load under way in another thread is not the child's


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_after_fork)


def nltk_target_dir() -> Path:
    """Where we install WordNet: the first ``$NLTK_DATA`` folder, else ``~/nltk_data``."""
    env = os.environ.get("NLTK_DATA", "").split(os.pathsep)[0]
    return Path(env).expanduser() if env else Path.home() / "nltk_data"


def system_wordnet_dir() -> Path | None:
    """A WordNet 3.0 database from the operating system (Debian's packages), if installed."""
    candidates = [os.environ.get("WNSEARCHDIR", ""), *SYSTEM_DIRS]
    for d in candidates:
        if d and all((Path(d) / f).is_file() for f in SYSTEM_FILES):
            return Path(d)
    return None


def install_from_system(source: Path, nltk_dir: Path) -> Path:
    """Copy a system WordNet into ``nltk_dir/corpora/wordnet`` with a ``lexnames`` file.

    Files are copied, not linked: NLTK 3.10 refuses paths that resolve outside its data paths.
    The folder appears at once (rename) so a concurrent reader never sees half of it.
    """
    corpora = nltk_dir / "corpora"
    corpora.mkdir(parents=True, exist_ok=True)
    target = corpora / "wordnet"
    tmp = Path(tempfile.mkdtemp(prefix=".wordnet-", dir=corpora))
    try:
        for name in SYSTEM_FILES:
            shutil.copyfile(source / name, tmp / name)
        (tmp / "lexnames").write_text(
            "".join(f"{i:02d}\t{n}\t{_LEX_CATEGORY[n.split('.')[0]]}\n" for i, n in enumerate(LEXNAMES)),
            encoding="ascii",
        )
        licence = Path("/usr/share/doc/wordnet-base/copyright")
        if licence.is_file():
            shutil.copyfile(licence, tmp / "LICENSE")
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _guarded_reader_class(base: type) -> type:
    """NLTK's reader with every read of its shared file handles behind one lock.

    NLTK keeps one open handle per data file and reads a synset by ``seek`` then ``readline``;
    two threads doing that at once read each other's bytes (a garbled line, a synset of None).
    Synsets call back into their reader for their parents and children, so guarding the reader's
    own methods covers every route in. Parsed synsets are cached by NLTK: once read, a synset is
    served from the cache without taking the lock.
    """

    class GuardedWordNetReader(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._after_fork()          # makes the lock (NLTK's __init__ already reads)
            super().__init__(*args, **kwargs)
            forksafe.register(self)

        def _after_fork(self) -> None:
            self._io_lock = threading.RLock()

        def synset_from_pos_and_offset(self, pos: str, offset: int) -> Any:
            cached = self._synset_offset_cache.get(pos, {}).get(offset)
            if cached is not None:
                return cached
            with self._io_lock:
                return super().synset_from_pos_and_offset(pos, offset)

        def lemma_count(self, lemma: Any) -> int:
            with self._io_lock:     # a binary search in the shared cntlist.rev handle
                return super().lemma_count(lemma)

        def lemma_from_key(self, key: str) -> Any:
            with self._io_lock:     # a binary search in the shared index.sense handle
                return super().lemma_from_key(key)

        def synset(self, name: str) -> Any:
            # An unknown lemma adds a key to NLTK's lemma map (a defaultdict), which must not
            # happen while all_lemma_names walks that map.
            with self._io_lock:
                return super().synset(name)

        def all_lemma_names(self, pos: str | None = None, lang: str = "eng") -> list[str]:
            with self._io_lock:
                return list(super().all_lemma_names(pos=pos, lang=lang))

    return GuardedWordNetReader


def _load_reader() -> Any:
    try:
        import nltk
        from nltk.corpus.reader.wordnet import WordNetCorpusReader
    except ImportError as e:  # reported like missing data: the other strategies still work
        raise LookupError(f"NLTK is not installed ({e})") from None

    for resource in ("corpora/wordnet", "corpora/wordnet.zip/wordnet/"):
        try:
            root = nltk.data.find(resource)
        except LookupError:
            continue
        with warnings.catch_warnings():
            # Without the Open Multilingual WordNet NLTK warns once; English needs none of it.
            warnings.simplefilter("ignore", UserWarning)
            return _guarded_reader_class(WordNetCorpusReader)(root, None)
    raise LookupError("WordNet not found in NLTK's data paths")


def _download() -> bool:
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # nltk's downloader has no timeout of its own
    try:
        import nltk

        return bool(nltk.download("wordnet", download_dir=str(nltk_target_dir()), quiet=True,
                                  raise_on_error=False))
    except Exception:  # any network or file failure means "not downloaded"; we report below
        return False
    finally:
        socket.setdefaulttimeout(previous)


def ensure_wordnet(download: bool | None = None) -> Any:
    """NLTK's WordNet reader, installing the data on first use if needed.

    Raises WordNetUnavailable with what to do when no route works. The outcome is remembered:
    a missing WordNet costs one attempt per process, not one per request.
    """
    global _reader, _failure
    if _reader is not None:
        return _reader
    with LOCK:
        if _reader is not None:
            return _reader
        if _failure is not None:
            raise WordNetUnavailable(_failure)
        if download is None:
            download = os.environ.get("ZSDEMO_WORDNET_DOWNLOAD", "1") != "0"
        try:
            _reader = _load_reader()
            return _reader
        except LookupError:
            pass
        system = system_wordnet_dir()
        if system is not None:
            try:
                install_from_system(system, nltk_target_dir())
                _reader = _load_reader()
                return _reader
            except (OSError, LookupError):
                pass
        if download and _download():
            try:
                _reader = _load_reader()
                return _reader
            except LookupError:
                pass
        _failure = (
            "WordNet data was not found, so the hierarchy strategies cannot look up parents and "
            "children (every other strategy works). Install it with `python -m zsdemo setup-wordnet` "
            "(needs internet, or Debian's wordnet-base and wordnet-sense-index packages)."
        )
        raise WordNetUnavailable(_failure)


def is_loaded() -> bool:
    """Whether WordNet is in memory (loading it takes seconds, once per process)."""
    return _reader is not None


def forget() -> None:
    """Forget the loaded reader and any failure (``senses.reset`` also clears the sense caches)."""
    global _reader, _failure
    with LOCK:
        _reader, _failure = None, None


def wordnet_status() -> str | None:
    """None when WordNet is usable, else the message saying why not and what to do."""
    try:
        ensure_wordnet()
        return None
    except WordNetUnavailable as e:
        return str(e)
