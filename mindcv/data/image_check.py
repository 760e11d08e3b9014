"""Screening of image files before MindSpore's ``Decode`` sees them.

``Decode`` does not survive every damaged file: a truncated, non-image or damaged PNG file makes it raise,
which stops the whole pipeline, and a JPEG cut inside its header, with a bogus Huffman table or with damaged
progressive scans kills the process (SIGFPE, SIGSEGV), even in MindSpore's error-samples modes. So files
are checked up front: the signature and the end of every file; for baseline JPEGs (the bulk of photo
datasets) the header segments, with the checks libjpeg applies to them, which is cheap, and damage inside
their scan data is let through because the decoder reads past it; progressive JPEGs and PNGs are decoded
once by Pillow, whose decoders fail cleanly.
"""
import os
import struct

from PIL import Image

_JPEG_START, _JPEG_END = b"\xff\xd8\xff", b"\xff\xd9"
_PNG_START, _PNG_END = b"\x89PNG\r\n\x1a\n", b"IEND"
_BMP_START = b"BM"
_TAIL_BYTES = 1024  # some writers leave padding after the end-of-image marker

_DQT, _DHT, _SOS = 0xDB, 0xC4, 0xDA
_FRAME_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_SEQUENTIAL_HUFFMAN_FRAMES = {0xC0, 0xC1}  # baseline and extended: one scan, decoded robustly
_STANDALONE_MARKERS = {0x01, *range(0xD0, 0xD9)}


EMPTY_FILE = "empty file"


def image_problem(path):
    """Why ``path`` cannot be decoded, or ``None``."""
    try:
        with open(path, "rb") as f:
            return _content_problem(f, os.fstat(f.fileno()).st_size)
    except OSError as err:
        return f"unreadable: {err.strerror or err}"


def _content_problem(f, size):
    if size == 0:
        return EMPTY_FILE
    head = f.read(16)
    f.seek(max(0, size - _TAIL_BYTES))
    tail = f.read()
    if head.startswith(_JPEG_START):
        if _JPEG_END not in tail:
            return "truncated JPEG (no end-of-image marker)"
        f.seek(2)
        return _jpeg_header_problem(f, size)
    if head.startswith(_PNG_START):
        return _decoding_problem(f) if _PNG_END in tail else "truncated PNG (no IEND chunk)"
    if head.startswith(_BMP_START) and len(head) >= 6:
        declared = struct.unpack("<I", head[2:6])[0]
        return None if declared <= size else f"truncated BMP ({size} of {declared} bytes)"
    return "not a JPEG, PNG or BMP image"


def _decoding_problem(f):
    """Decode the whole file with Pillow (JPEGs at 1/8 scale, which still reads every scan)."""
    f.seek(0)
    try:
        with Image.open(f) as img:
            img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))
            img.load()
    except Exception as err:  # Pillow reports damaged data with many exception types
        return f"corrupt image data ({err})"
    return None


def _segments(f, size):
    """``(marker, payload)`` of each JPEG header segment up to and including the scan header.

    Yields ``(None, reason)`` for a broken segment structure and stops.
    """
    while True:
        marker = f.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            yield None, "corrupt JPEG header"
            return
        if marker[1] == 0xFF:  # fill byte: the marker code follows
            f.seek(-1, os.SEEK_CUR)
            continue
        if marker[1] in _STANDALONE_MARKERS:
            continue
        field = f.read(2)
        length = struct.unpack(">H", field)[0] if len(field) == 2 else 0
        if length < 2 or f.tell() + length - 2 > size:
            yield None, "corrupt JPEG header (segment runs past the end)"
            return
        yield marker[1], f.read(length - 2)
        if marker[1] == _SOS:
            return


def _quantization_problem(payload, defined):
    while payload:
        precision, table = payload[0] >> 4, payload[0] & 15
        table_bytes = 64 * (precision + 1)
        if precision > 1 or table > 3 or len(payload) < 1 + table_bytes:
            return "bogus quantization table"
        defined.add(table)
        payload = payload[1 + table_bytes:]
    return None


def _huffman_problem(payload):
    while payload:
        if len(payload) < 17:
            return "bogus Huffman table"
        table_class, table = payload[0] >> 4, payload[0] & 15
        counts = payload[1:17]
        symbols = payload[17:17 + sum(counts)]
        if table_class > 1 or table > 3 or sum(counts) > 256 or len(symbols) < sum(counts):
            return "bogus Huffman table"
        code = 0
        for length, count in enumerate(counts, start=1):  # the codes must fit their lengths (no all-ones code)
            code += count
            if code >= 1 << length:
                return "bogus Huffman table"
            code <<= 1
        if table_class == 0 and any(s > 15 for s in symbols):
            return "bogus Huffman table (DC symbol over 15)"
        payload = payload[17 + sum(counts):]
    return None


def _frame_problem(payload):
    """Problem of a frame header, or its ``{component id: quantization table}``."""
    if len(payload) < 6:
        return "corrupt JPEG frame header", None
    precision, height, width, count = payload[0], *struct.unpack(">HH", payload[1:5]), payload[5]
    if precision != 8 or not height or not width or not 1 <= count <= 4 or len(payload) != 6 + 3 * count:
        return "unsupported or corrupt JPEG frame header", None
    components = {}
    for i in range(count):
        component, sampling, table = payload[6 + 3 * i:9 + 3 * i]
        if not (1 <= sampling >> 4 <= 4 and 1 <= sampling & 15 <= 4) or table > 3:
            return "corrupt JPEG frame header", None
        components[component] = table
    return None, components


def _scan_problem(payload, components, quantization_tables):
    if components is None:
        return "JPEG scan before any frame header"
    count = payload[0] if payload else 0
    if not 1 <= count <= 4 or len(payload) != 4 + 2 * count:
        return "corrupt JPEG scan header"
    for i in range(count):
        component, tables = payload[1 + 2 * i:3 + 2 * i]
        if component not in components or tables >> 4 > 3 or tables & 15 > 3:
            return "corrupt JPEG scan header"
    if not set(components.values()) <= quantization_tables:
        return "JPEG quantization table used but not defined"
    return None


def _jpeg_header_problem(f, size):
    components, quantization_tables, frame = None, set(), None
    for marker, payload in _segments(f, size):
        if marker is None:
            return payload
        if marker == _DQT:
            problem = _quantization_problem(payload, quantization_tables)
        elif marker == _DHT:
            problem = _huffman_problem(payload)
        elif marker in _FRAME_MARKERS:
            (problem, components), frame = _frame_problem(payload), marker
        elif marker == _SOS:
            problem = _scan_problem(payload, components, quantization_tables)
            return problem or (None if frame in _SEQUENTIAL_HUFFMAN_FRAMES else _decoding_problem(f))
        else:
            problem = None
        if problem:
            return problem
    return "corrupt JPEG header"
