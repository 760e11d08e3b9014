"""Download files into a local cache, atomically and with checksum verification."""
import bz2
import gzip
import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile

from tqdm import tqdm

from .errors import DownloadError, InvalidValueError

__all__ = ["DownLoad", "download_url", "file_sha256", "get_cache_dir"]

CACHE_ENV = "MINDCV_CACHE_DIR"
_CHUNK = 1 << 20


def get_cache_dir():
    """Where downloaded checkpoints live: ``$MINDCV_CACHE_DIR`` or ``~/.cache/mindcv/checkpoints``."""
    default = os.path.join(os.path.expanduser("~"), ".cache", "mindcv", "checkpoints")
    return os.environ.get(CACHE_ENV) or default


def file_sha256(path):
    return _file_digest(path, hashlib.sha256(), _CHUNK)


def _file_digest(path, digest, chunk_size):
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_url(url, cache_dir=None, sha256=None, filename=None, progress=True, timeout=60):
    """Return the local path of ``url``, downloading it into ``cache_dir`` unless a verified copy is there.

    The file is written to a temporary name in the cache directory and renamed only once complete and,
    when ``sha256`` is given, verified, so an interrupted or corrupted download never sits in the cache.
    """
    cache_dir = cache_dir or get_cache_dir()
    filename = filename or os.path.basename(urllib.parse.urlparse(url).path)
    path = os.path.join(cache_dir, filename)
    if os.path.isfile(path) and (sha256 is None or file_sha256(path) == sha256):
        return path
    _fetch(url, path, sha256, progress, timeout)
    return path


def _fetch(url, path, sha256, progress, timeout, chunk_size=_CHUNK):
    """Download ``url`` to ``path`` through a temporary sibling, renamed only once complete and verified."""
    folder, filename = os.path.split(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            _stream(url, out, progress, timeout, chunk_size)
        if sha256 is not None:
            actual = file_sha256(tmp_path)
            if actual != sha256:
                raise DownloadError(
                    f"Checksum mismatch for {url}: expected sha256 {sha256}, got {actual}. "
                    "The file was discarded; retry, or pass a verified local file as checkpoint_path."
                )
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)


def _stream(url, out, progress, timeout, chunk_size):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=os.path.basename(url), disable=not progress) as bar:
                for chunk in iter(lambda: response.read(chunk_size), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise DownloadError(
            f"Could not download {url} ({reason}). Download it where the network allows and pass the local "
            f"file as checkpoint_path=..., or place it in the cache directory {get_cache_dir()} "
            f"(set ${CACHE_ENV} to change it)."
        ) from err


# Archive suffixes, longest first so that ".tar.gz" wins over ".gz": (archive type, compression).
_ARCHIVE_SUFFIXES = ((".tar.gz", ".tar", ".gz"), (".tar.bz2", ".tar", ".bz2"), (".tgz", ".tar", ".gz"),
                     (".tbz2", ".tar", ".bz2"), (".tar", ".tar", None), (".zip", ".zip", None),
                     (".gz", None, ".gz"), (".bz2", None, ".bz2"))
_DECOMPRESSORS = {".gz": gzip.open, ".bz2": bz2.open}


def _archive_kind(path):
    for suffix, archive_type, compression in _ARCHIVE_SUFFIXES:
        if path.lower().endswith(suffix):
            return suffix, archive_type, compression
    accepted = ", ".join(suffix for suffix, _, _ in _ARCHIVE_SUFFIXES)
    raise InvalidValueError(f"Cannot extract {path}: not a known archive; accepted suffixes: {accepted}.")


class DownLoad:
    """MindCV's download helper (its datasets and examples subclass it), on this module's atomic download.

    Files go to ``path`` (default: the cache directory, ``get_cache_dir()``); an ``md5`` is checked before a
    present file is reused and after a download, whose file is discarded on mismatch."""

    @staticmethod
    def calculate_md5(file_path, chunk_size=1024 * 1024):
        return _file_digest(file_path, hashlib.md5(), chunk_size)

    def check_md5(self, file_path, md5=None):
        return md5 == self.calculate_md5(file_path)

    @staticmethod
    def extract_tar(from_path, to_path=None, compression=None):
        with tarfile.open(from_path, f"r:{compression[1:]}" if compression else "r") as tar:
            tar.extractall(to_path, filter="data")  # refuses members that would land outside to_path

    @staticmethod
    def extract_zip(from_path, to_path=None, compression=None):
        with zipfile.ZipFile(from_path) as archive:  # the compression of each member is read from the file
            archive.extractall(to_path)

    def extract_archive(self, from_path, to_path=None):
        """Unpack ``from_path`` into ``to_path`` (default: its folder) and return ``to_path``; a compressed
        single file (``.gz``, ``.bz2``) is written beside it without the suffix, and that path is returned."""
        suffix, archive_type, compression = _archive_kind(from_path)
        if archive_type is None:
            target = from_path[:-len(suffix)]
            with _DECOMPRESSORS[compression](from_path, "rb") as packed, open(target, "wb") as out:
                shutil.copyfileobj(packed, out)
            return target
        to_path = to_path or os.path.dirname(from_path)
        extract = self.extract_tar if archive_type == ".tar" else self.extract_zip
        extract(from_path, to_path, compression)
        return to_path

    def download_file(self, url, file_path, chunk_size=1024):
        """Download ``url`` to ``file_path``, replacing it, reading ``chunk_size`` bytes at a time."""
        _fetch(url, file_path, None, progress=True, timeout=60, chunk_size=chunk_size)

    def download_url(self, url, path=None, filename=None, md5=None):
        path = os.path.expanduser(path or get_cache_dir())
        file_path = os.path.join(path, filename or os.path.basename(url))
        if os.path.isfile(file_path) and (not md5 or self.check_md5(file_path, md5)):
            return
        self.download_file(url, file_path)
        actual = self.calculate_md5(file_path) if md5 else None
        if actual != md5:
            os.remove(file_path)
            raise DownloadError(f"Checksum mismatch for {url}: expected md5 {md5}, got {actual}. The file was "
                                f"discarded; retry, or place a verified copy at {file_path}.")

    def download_and_extract_archive(self, url, download_path=None, extract_path=None, filename=None, md5=None,
                                     remove_finished=False):
        download_path = os.path.expanduser(download_path or get_cache_dir())
        filename = filename or os.path.basename(url)
        self.download_url(url, download_path, filename, md5)
        archive = os.path.join(download_path, filename)
        self.extract_archive(archive, extract_path)
        if remove_finished:
            os.remove(archive)
