"""Download files into a local cache, atomically and with checksum verification."""
import hashlib
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request

from tqdm import tqdm

from .errors import DownloadError

CACHE_ENV = "MINDCV_CACHE_DIR"
_CHUNK = 1 << 20


def get_cache_dir():
    """Where downloaded checkpoints live: ``$MINDCV_CACHE_DIR`` or ``~/.cache/mindcv/checkpoints``."""
    default = os.path.join(os.path.expanduser("~"), ".cache", "mindcv", "checkpoints")
    return os.environ.get(CACHE_ENV) or default


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
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
    os.makedirs(cache_dir, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part", dir=cache_dir)
    try:
        with os.fdopen(fd, "wb") as out:
            _stream(url, out, progress, timeout)
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
    return path


def _stream(url, out, progress, timeout):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=os.path.basename(url), disable=not progress) as bar:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
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
