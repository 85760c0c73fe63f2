"""The command-line pieces the samples share (samples/common.py, samples/qrcommon.py):
DCMTK-style model options and keys, AE table entries, progress lines."""

from __future__ import annotations

import argparse
import importlib
import os
import socket
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def sample_module(monkeypatch: pytest.MonkeyPatch, name: str) -> ModuleType:
    # A sample run as a program has its folder first on sys.path; do the same here.
    monkeypatch.syspath_prepend(str(SAMPLES))
    return importlib.import_module(name)


@pytest.fixture
def qrcommon(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return sample_module(monkeypatch, "qrcommon")


@pytest.fixture
def common(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return sample_module(monkeypatch, "common")


def test_model_options_parse_like_dcmtk(qrcommon: ModuleType) -> None:
    parser = argparse.ArgumentParser()
    qrcommon.add_model_options(parser, worklist=True)
    args = parser.parse_args(["-P", "-k", "PatientName=X", "-k", "(0010,0020)"])
    assert args.model == "patient"
    assert [key.element.keyword for key in args.keys] == ["PatientName", "PatientID"]
    assert parser.parse_args([]).model == "study"
    assert parser.parse_args(["-W"]).model == "worklist"
    with pytest.raises(SystemExit):
        parser.parse_args(["-k", "NoSuchKeyword=1"])
    with pytest.raises(SystemExit):
        parser.parse_args(["-P", "-S"])


def test_a_bad_key_reports_its_reason(qrcommon: ModuleType) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="not a DICOM keyword"):
        qrcommon.key_argument("PatientNme=DOE")


def test_move_destinations_parse(common: ModuleType) -> None:
    assert common.parse_ae_address("STORE=127.0.0.1:104") == ("STORE", ("127.0.0.1", 104))
    assert common.parse_ae_address("X=::1:11112") == ("X", ("::1", 11112))
    for bad in (
        "STORE",
        "STORE=host",
        "=h:1",
        "STORE=h:0",
        "STORE=h:x",
        "A_VERY_LONG_AE_TITLE=h:1",
    ):
        with pytest.raises(argparse.ArgumentTypeError):
            common.parse_ae_address(bad)


def test_a_window_is_0_to_65535_operations(
    common: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert [common.operations_window(text) for text in ("0", "1", "16", "65535")] == [
        0,
        1,
        16,
        65535,
    ]
    for bad in ("-1", "65536", "x", "", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError):
            common.operations_window(bad)
    storescu = sample_module(monkeypatch, "storescu")
    with pytest.raises(SystemExit):
        storescu.main(["--window", "-3", "127.0.0.1", "104", "file.dcm"])
    assert "is not a window of 0 (no limit) to 65535 operations" in capsys.readouterr().err


def test_progress_leaves_out_an_absent_remaining_count(qrcommon: ModuleType) -> None:
    assert qrcommon.format_progress(3, 2, 1, 0) == "remaining 3, completed 2, failed 1, warning 0"
    assert qrcommon.format_progress(-1, 2, 1, 0) == "completed 2, failed 1, warning 0"


@pytest.fixture
def qrscp(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return sample_module(monkeypatch, "qrscp")


def test_archive_options(qrscp: ModuleType, tmp_path: Path) -> None:
    args = qrscp.parse_arguments(
        [
            "--storage-dir",
            str(tmp_path),
            "--duplicates",
            "refuse",
            "--move-destination",
            "STORE=127.0.0.1:104",
            "--worklist-dir",
            str(tmp_path / "wl"),
            "0",
        ]
    )
    assert qrscp.DUPLICATE_POLICIES[args.duplicates].name == "REFUSE"
    assert args.database is None  # the SQLite file in the storage folder
    assert args.move_destinations == [("STORE", ("127.0.0.1", 104))]
    assert args.worklist_dir == tmp_path / "wl"
    assert qrscp.parse_arguments(["0"]).duplicates == "keep"
    with pytest.raises(SystemExit):
        qrscp.parse_arguments(["--duplicates", "ignore", "0"])


def test_a_database_url_is_logged_without_its_password(qrscp: ModuleType) -> None:
    assert qrscp.redacted("postgresql://pacs:secret@db:5432/archive") == (
        "postgresql://pacs@db:5432/archive"
    )
    assert qrscp.redacted("sqlite:////srv/archive/index.db") == "sqlite:////srv/archive/index.db"


def test_each_archive_process_spools_apart_and_clears_what_gone_ones_left(
    qrscp: ModuleType, tmp_path: Path
) -> None:
    host = socket.gethostname()
    dead = subprocess.Popen(["true"])  # its pid is no longer running once waited for
    dead.wait()
    gone = tmp_path / f"{host}-{dead.pid}"
    alive = tmp_path / f"{host}-{os.getppid()}"
    elsewhere = tmp_path / "otherhost-1"
    for folder in (gone, alive, elsewhere):
        folder.mkdir()
        (folder / "transfer.part").write_bytes(b"half")
    mine = qrscp.own_spool(tmp_path)
    assert mine == tmp_path / f"{host}-{os.getpid()}"
    assert mine.is_dir() and not any(mine.iterdir())
    assert not gone.exists()
    assert (alive / "transfer.part").exists()  # another archive's transfer in progress
    assert (elsewhere / "transfer.part").exists()  # another host's: not ours to judge
