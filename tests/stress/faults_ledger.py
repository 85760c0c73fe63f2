"""Nothing lost: what a sender was told, checked against what the receiver kept.

The sender's account of each instance is Success or a failure; the receiver's is the
data sets it holds. Nothing was lost when every instance sent was reported one way or
the other (never both, never neither), every one reported Success is held with a data
set byte-identical to the one sent, and nothing held differs from what was sent (a
partial file kept under an instance's name is a loss too, whatever its status said).
The fault tests use it; a load test can use it the same way.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import UID

from dicomnet.dimse.part10 import read_part10_header
from dicomnet.uids import EXPLICIT_VR_LE

UID_ROOT = "1.2.826.0.1.3680043.8.498"  # where the made-up instances' UIDs start
_CHUNK = 1 << 20


def write_instance(path: Path, sop_instance: str, pixel_bytes: int) -> Path:
    """A Secondary Capture Part-10 file whose pixel data are ``pixel_bytes`` random
    bytes (so a dropped or repeated fragment changes its digest)."""
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = sop_instance
    ds.PatientID = "FAULTS"
    ds.PatientName = "Fault^Tests"
    ds.StudyInstanceUID = f"{UID_ROOT}.1"
    ds.SeriesInstanceUID = f"{UID_ROOT}.2"
    ds.Modality = "OT"
    ds.PixelData = os.urandom(pixel_bytes)
    ds["PixelData"].VR = "OB"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(EXPLICIT_VR_LE)
    ds.save_as(path, enforce_file_format=True)
    return path


def digest_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def data_set_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a Part-10 file's data set (what follows the meta header), streamed."""
    header = read_part10_header(path)
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        file.seek(header.data_offset)
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def held_instances(directory: Path) -> dict[str, str]:
    """SOP Instance UID -> data set digest of the Part-10 files directly in ``directory``."""
    held = {}
    for path in directory.iterdir():
        if path.is_file():
            held[read_part10_header(path).sop_instance_uid] = data_set_digest(path)
    return held


class Ledger:
    """The instances a test sent: SOP Instance UID -> data set digest, and file path."""

    def __init__(self) -> None:
        self.sent: dict[str, str] = {}
        self.paths: dict[str, Path] = {}

    def add(self, path: Path) -> str:
        """Record a file about to be sent (before any fault touches it); its UID."""
        uid = read_part10_header(path).sop_instance_uid
        self.sent[uid] = data_set_digest(path)
        self.paths[uid] = path
        return uid

    def uid_of(self, path: Path) -> str:
        return next(uid for uid, known in self.paths.items() if known == path)

    def assert_nothing_lost(
        self, succeeded: Iterable[str], failed: Iterable[str], held: Mapping[str, str]
    ) -> None:
        """``succeeded``/``failed``: the UIDs the sender was told about; ``held``: UID ->
        data set digest of what the receiver kept."""
        ok, bad = set(succeeded), set(failed)
        assert not ok & bad, f"reported both stored and failed: {sorted(ok & bad)}"
        assert ok | bad == set(self.sent), (
            f"sent but never reported: {sorted(set(self.sent) - ok - bad)}; "
            f"reported but never sent: {sorted((ok | bad) - set(self.sent))}"
        )
        missing = sorted(uid for uid in ok if uid not in held)
        assert not missing, f"reported stored, not held: {missing}"
        differ = sorted(uid for uid, digest in held.items() if self.sent.get(uid) != digest)
        assert not differ, f"held data sets that differ from what was sent: {differ}"


def held_raw(received: Iterable[tuple[str, bytes]]) -> dict[str, str]:
    """UID -> digest of data sets a raw peer kept in memory."""
    return {uid: digest_bytes(data) for uid, data in received}
