"""Which landing objects the local engine can read whole (resources/landing_objects.py)."""

import gzip
import zlib
from pathlib import Path

import pytest

from purchase_pipeline.resources.landing_objects import check_objects, unreadable_reason

TEXT = '{"bookId":"B1","userId":"U1","purchaseTimestamp":1740805200,"title":"Café ✓"}\n' * 50


def test_good_objects_plain_and_gzip_are_readable() -> None:
    assert unreadable_reason("a.json", TEXT.encode()) is None
    assert unreadable_reason("a.gz", gzip.compress(TEXT.encode())) is None


def test_a_gzip_stream_of_several_members_or_zero_padded_is_readable() -> None:
    two = gzip.compress(TEXT.encode()) + gzip.compress(TEXT.encode())
    assert unreadable_reason("a.gz", two) is None
    assert unreadable_reason("a.gz", gzip.compress(TEXT.encode()) + b"\x00" * 16) is None


@pytest.mark.parametrize("cut", [1, 8, 40, 200])
def test_a_gzip_stream_cut_short_is_unreadable(cut: int) -> None:
    body = gzip.compress(TEXT.encode())
    reason = unreadable_reason("a.gz", body[:-cut])
    assert reason is not None and reason.startswith("unreadable gzip stream")


def test_a_corrupt_gzip_stream_is_unreadable_with_the_inflaters_message() -> None:
    body = bytearray(gzip.compress(TEXT.encode()))
    body[20:30] = b"\xff" * 10
    reason = unreadable_reason("a.gz", bytes(body))
    assert reason is not None and reason.startswith("unreadable gzip stream: Error")
    with pytest.raises(zlib.error):  # corrupt for zlib too, not only for ISA-L
        zlib.decompress(bytes(body), wbits=31)


def test_a_gzip_stream_with_a_wrong_checksum_is_unreadable() -> None:
    """Every deflate block is intact; only the CRC-32 in the trailer disagrees."""
    body = bytearray(gzip.compress(TEXT.encode()))
    body[-8:-4] = bytes(b ^ 0xFF for b in body[-8:-4])
    reason = unreadable_reason("a.gz", bytes(body))
    assert reason is not None and reason.startswith("unreadable gzip stream")
    assert "checksum" in reason.lower()


def test_bytes_that_are_not_utf8_name_the_offset() -> None:
    body = TEXT.encode() + "é".encode("latin-1") + b"\n"
    assert unreadable_reason("a.json", body) == f"not UTF-8 text: byte {len(TEXT.encode())} is e9"
    assert unreadable_reason("a.gz", gzip.compress(body)) is not None


def test_a_nul_byte_alone_is_readable_but_the_line_delimiter_sequence_is_not() -> None:
    assert unreadable_reason("a.json", b'{"a":"x\x00y"}\n') is None
    assert unreadable_reason("a.json", b'{"a":"x\x00\x01\x02\x03y"}\n') is not None


def test_unreadable_objects_checks_every_key_and_returns_only_the_bad_ones() -> None:
    bodies = {
        "k/good.gz": gzip.compress(TEXT.encode()),
        "k/cut.gz": gzip.compress(TEXT.encode())[:-10],
        "k/latin.json": "é".encode("latin-1"),
        "k/plain.json": TEXT.encode(),
    }
    got = check_objects(sorted(bodies), bodies.__getitem__, threads=2)
    assert sorted(got.unreadable) == ["k/cut.gz", "k/latin.json"]
    assert got.texts == {}  # nowhere to keep them


def test_the_text_of_each_readable_gzip_object_is_kept_where_asked(tmp_path: Path) -> None:
    two_members = gzip.compress(TEXT.encode()) + gzip.compress(b"second member\n")
    bodies = {
        "k/a.gz": gzip.compress(TEXT.encode()),
        "k/b.gz": two_members,
        "k/cut.gz": gzip.compress(TEXT.encode())[:-10],
        "k/plain.json": TEXT.encode(),  # read as it is: nothing to inflate
    }
    got = check_objects(sorted(bodies), bodies.__getitem__, threads=2, text_dir=str(tmp_path))
    assert list(got.unreadable) == ["k/cut.gz"]
    assert sorted(got.texts) == ["k/a.gz", "k/b.gz"]
    assert Path(got.texts["k/a.gz"]).read_bytes() == TEXT.encode()
    assert Path(got.texts["k/b.gz"]).read_bytes() == gzip.decompress(two_members)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        Path(p).name for p in got.texts.values()
    )


def test_without_the_utf8_check_gzip_and_the_delimiter_are_still_checked() -> None:
    latin = TEXT.encode() + "é".encode("latin-1") + b"\n"
    assert unreadable_reason("a.json", latin, utf8=False) is None
    cut = unreadable_reason("a.gz", gzip.compress(latin)[:-8], utf8=False)
    assert cut is not None and cut.startswith("unreadable gzip stream")
    assert unreadable_reason("a.json", b'{"a":"x\x00\x01\x02\x03y"}\n', utf8=False) is not None
    assert unreadable_reason("a.json", b'{"a":"x\x00\x01\x02y"}\n', utf8=False) is None


@pytest.mark.parametrize("before", [0, 1, 63, 64, 65, 10_000])
@pytest.mark.parametrize("utf8", [True, False])
def test_the_replacement_character_is_found_after_any_number_of_its_first_byte(
    before: int, utf8: bool
) -> None:
    # U+FF5B (a fullwidth brace) starts with the same byte, EF, as U+FFFD.
    lead = TEXT + '{"title": "' + "\uff5b" * before + '"}\n'
    assert unreadable_reason("a.json", lead.encode(), utf8) is None
    found = unreadable_reason("a.json", (lead + "\ufffd\n").encode(), utf8)
    assert found is not None and "U+FFFD" in found
    gz = unreadable_reason("a.gz", gzip.compress((lead + "x\ufffd").encode()), utf8)
    assert gz is not None and "U+FFFD" in gz
