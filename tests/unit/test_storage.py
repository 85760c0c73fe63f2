"""dicomnet.storage and dicomnet.uids: UID syntax, safe names for received instances
whatever UID a peer sends, and the atomic keep of a spooled file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydicom.uid import CTImageStorage, SecondaryCaptureImageStorage

from dicomnet.storage import (
    RECEIVED_FILE_MODE,
    instance_file_name,
    keep_received_file,
    sop_class_abbreviation,
)
from dicomnet.uids import is_valid_uid


@pytest.mark.parametrize("uid", ["1.2.840.10008.1.1", "0", "1.0.3", "2.25." + "9" * 59])
def test_well_formed_uids(uid: str) -> None:
    assert is_valid_uid(uid)
    assert is_valid_uid(uid, strict=False)


@pytest.mark.parametrize(
    "uid", ["", "1..2", ".1", "1.", "1.2a", "1 .2", "1/2", "../1", "1.2\n", "1" * 65]
)
def test_malformed_uids(uid: str) -> None:
    assert not is_valid_uid(uid)
    assert not is_valid_uid(uid, strict=False)


def test_leading_zeros_are_tolerated_only_when_asked() -> None:
    assert not is_valid_uid("1.2.03")
    assert is_valid_uid("1.2.03", strict=False)


def test_abbreviations_name_the_kind_of_data() -> None:
    assert sop_class_abbreviation(CTImageStorage) == "CT"
    assert sop_class_abbreviation(SecondaryCaptureImageStorage) == "SC"
    assert sop_class_abbreviation("1.2.3.4") == "UNKNOWN"


def test_a_valid_uid_names_the_file() -> None:
    assert instance_file_name(CTImageStorage, "1.2.3") == "CT.1.2.3"
    assert instance_file_name(CTImageStorage, "1.02.3") == "CT.1.02.3"


@pytest.mark.parametrize(
    "uid", ["../../etc/passwd", "1.2/../../x", "/tmp/x", "..", "1.2.3\x00", "C:\\x", ""]
)
def test_path_tricks_get_a_random_name(uid: str) -> None:
    name = instance_file_name(CTImageStorage, uid)
    assert name.startswith("CT.invalid-uid-")
    assert name != instance_file_name(CTImageStorage, uid)  # random, so never chosen


@given(st.text(max_size=80))
def test_no_uid_escapes_the_directory(uid: str) -> None:
    name = instance_file_name(CTImageStorage, uid)
    assert os.sep not in name and "/" not in name and "\x00" not in name
    assert name not in (".", "..") and not name.startswith(".")


def test_keep_moves_the_file_with_the_usual_mode(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    received = spool / "dicomnet-1.part"
    received.write_bytes(b"DICM")
    received.chmod(0o600)
    kept = keep_received_file(received, tmp_path, CTImageStorage, "1.2.3")
    assert kept == tmp_path / "CT.1.2.3"
    assert kept.read_bytes() == b"DICM" and not received.exists()
    assert stat.S_IMODE(kept.stat().st_mode) == RECEIVED_FILE_MODE
    again = spool / "dicomnet-2.part"
    again.write_bytes(b"NEW")
    assert keep_received_file(again, tmp_path, CTImageStorage, "1.2.3") == kept
    assert kept.read_bytes() == b"NEW"  # the same instance again replaces it


def test_a_failed_keep_raises_and_leaves_the_spool_file(tmp_path: Path) -> None:
    received = tmp_path / "dicomnet-1.part"
    received.write_bytes(b"DICM")
    with pytest.raises(OSError):
        keep_received_file(received, tmp_path / "missing", CTImageStorage, "1.2.3")
    assert received.exists()
