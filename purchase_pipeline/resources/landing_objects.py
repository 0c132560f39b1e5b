"""Which landing objects can be read whole, as UTF-8 lines, and which cannot (the local engine's
check; the aws engine's is in its SQL, resources/engine/aws_engine.py).

Why it exists: DuckDB reads the readable start of a truncated gzip stream without an error,
and fails a whole batch of hours on one object that is not UTF-8. Either way records would be
lost silently or a day would never build. The local engine checks each object first (for
UTF-8 only once DuckDB has refused a batch, as that half of the check is the slower one); one
it cannot read whole becomes a single `unreadable_object` rejection that names its key and
the problem, and the rest of the batch builds. Objects are checked in parallel threads (ISA-L,
like zlib, releases the GIL), each in memory once: landing objects are Firehose buffers of a
few MiB. ISA-L inflates twice as fast as zlib: checking the 807 objects of a 1M-event day
takes 0.25 s against 0.45 s on 2 cores.

The check has to inflate every gzip object anyway, so it can also keep the text it checked
(`text_dir`): DuckDB then reads that text instead of inflating each object a second time
(0.43 s of its 0.62 s read of a 1M-event day), and reads exactly the bytes that were checked.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from isal import isal_zlib

# The column delimiter the local engine reads lines with: four bytes no JSON text holds
# (JSON forbids raw control characters), so a NUL inside a line does not cut it short.
LINE_DELIMITER = b"\x00\x01\x02\x03"
# U+FFFD in UTF-8. Athena's and Trino's text readers replace bytes that are not UTF-8 with it as
# they read, so there an object that held such bytes and one that holds U+FFFD look the same;
# every engine takes both for text that is not UTF-8 (docs/data-rules.md).
REPLACEMENT_CHARACTER = "\ufffd".encode()


def unreadable_reason(key: str, body: bytes, utf8: bool = True) -> str | None:
    """Why the object `key` with these bytes cannot be read whole as text, or None.

    With `utf8=False` the text is not checked for being UTF-8 (half the cost of the check):
    for a reader that refuses text that is not, and asks again with `utf8=True` when it does.
    """
    return _read_text(key, body, utf8)[1]


def _read_text(key: str, body: bytes, utf8: bool) -> tuple[bytes, str | None]:
    """The object's text (its bytes, inflated when it is gzip) and why it cannot be read
    whole, or None."""
    text = body
    if key.endswith(".gz"):
        try:
            text = _gunzip(body)
        except (isal_zlib.error, EOFError) as exc:
            return b"", f"unreadable gzip stream: {exc}"
    if utf8:
        try:
            text.decode("utf-8")
        except UnicodeDecodeError as exc:
            reason = f"not UTF-8 text: byte {exc.start} is {text[exc.start : exc.start + 1].hex()}"
            return text, reason
    # Looking for a NUL first is ten times faster than for the whole sequence.
    if b"\x00" in text and LINE_DELIMITER in text:
        return text, "holds the byte sequence 00 01 02 03, which no JSON text holds"
    if _holds(text, REPLACEMENT_CHARACTER):
        return text, (
            "holds U+FFFD, the replacement character: bytes that were not UTF-8 (Athena and "
            "Trino read them as it)"
        )
    return text, None


# How many times `_holds` looks at its needle's first byte before it searches the slow way.
_FIRST_BYTE_TRIES = 64


def _holds(text: bytes, needle: bytes) -> bool:
    """`needle in text`, fast when the needle's first byte is rare in the text.

    `in` holds the GIL and searches at about 1.6 GB/s: 0.17 s for a 1M-event day, and the
    checking threads wait on each other. Its first byte found by `find` (memchr) takes 0.01 s
    for U+FFFD, whose first byte, EF, starts only the code points U+F000 to U+FFFF. A text full
    of that byte is searched the slow way after a few tries.
    """
    first = needle[:1]
    at = text.find(first)
    for _ in range(_FIRST_BYTE_TRIES):
        if at < 0:
            return False
        if text.startswith(needle, at):
            return True
        at = text.find(first, at + 1)
    return needle in text


def _gunzip(body: bytes) -> bytes:
    """Every member of a gzip stream, or an error when one is cut short or corrupt."""
    out = []
    rest = body
    while True:
        stream = isal_zlib.decompressobj(wbits=31)
        out.append(stream.decompress(rest))
        if not stream.eof:
            raise EOFError(f"stream ends after {len(body)} bytes, before its end marker")
        rest = stream.unused_data
        if not rest.strip(b"\x00"):  # some writers pad the last member with zeros
            return b"".join(out)


@dataclass(frozen=True)
class CheckedObjects:
    """What checking a batch of landing objects found."""

    # The objects that cannot be read whole, each with why.
    unreadable: dict[str, str]
    # Where the text of each readable gzip object was written, when the check was asked to.
    texts: dict[str, str]


def check_objects(
    keys: Iterable[str],
    read: Callable[[str], bytes],
    threads: int | None = None,
    utf8: bool = True,
    text_dir: str | None = None,
) -> CheckedObjects:
    """Check every object among `keys` (see `unreadable_reason` for `utf8`); with `text_dir`,
    write the text of each readable gzip object there, to be read instead of the object."""
    keys = list(keys)

    def check(numbered: tuple[int, str]) -> tuple[str | None, str | None]:
        number, key = numbered
        text, reason = _read_text(key, read(key), utf8)
        if reason is not None or text_dir is None or not key.endswith(".gz"):
            return reason, None
        path = Path(text_dir) / f"{number:06d}.txt"
        path.write_bytes(text)
        return None, str(path)

    with ThreadPoolExecutor(max_workers=threads or os.cpu_count() or 1) as pool:
        found = list(pool.map(check, enumerate(keys)))
    return CheckedObjects(
        unreadable={k: r for k, (r, _) in zip(keys, found, strict=True) if r is not None},
        texts={k: p for k, (_, p) in zip(keys, found, strict=True) if p is not None},
    )
