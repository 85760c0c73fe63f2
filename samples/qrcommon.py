"""What the query/retrieve samples (findscu, getscu, movescu) share on the command line:
the -P/-S/-W information model options, ``-k`` keys (parsed by ``dicomnet.qr``), and
the sub-operation counts as printed. The query/retrieve logic itself is ``dicomnet.qr``.
"""

from __future__ import annotations

import argparse

from pydicom import Dataset

from dicomnet import DicomCommandStatusType
from dicomnet.qr import InvalidKey, QueryKey, failed_instances, parse_key
from dicomnet.sopclasses import (
    MODALITY_WORKLIST_FIND,
    PATIENT_ROOT_FIND,
    PATIENT_ROOT_GET,
    PATIENT_ROOT_MOVE,
    STUDY_ROOT_FIND,
    STUDY_ROOT_GET,
    STUDY_ROOT_MOVE,
)

# The SOP classes of each -P/-S/-W model and the level a query gets by default.
FIND_MODELS = {
    "patient": PATIENT_ROOT_FIND,
    "study": STUDY_ROOT_FIND,
    "worklist": MODALITY_WORKLIST_FIND,
}
GET_MODELS = {"patient": PATIENT_ROOT_GET, "study": STUDY_ROOT_GET}
MOVE_MODELS = {"patient": PATIENT_ROOT_MOVE, "study": STUDY_ROOT_MOVE}
DEFAULT_LEVEL = {"patient": "PATIENT", "study": "STUDY"}


def key_argument(text: str) -> QueryKey:
    """``parse_key`` as an argparse ``type``, so a bad key's reason is printed."""
    try:
        return parse_key(text)
    except InvalidKey as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_model_options(parser: argparse.ArgumentParser, *, worklist: bool = False) -> None:
    """-P/-S (and -W) to choose the information model, -k for keys (DCMTK spellings)."""
    models = parser.add_mutually_exclusive_group()
    models.add_argument(
        "-P",
        "--patient",
        dest="model",
        action="store_const",
        const="patient",
        help="use the Patient Root information model",
    )
    models.add_argument(
        "-S",
        "--study",
        dest="model",
        action="store_const",
        const="study",
        help="use the Study Root information model (default)",
    )
    if worklist:
        models.add_argument(
            "-W",
            "--worklist",
            dest="model",
            action="store_const",
            const="worklist",
            help="use the Modality Worklist information model",
        )
    parser.set_defaults(model="study")
    parser.add_argument(
        "-k",
        "--key",
        dest="keys",
        action="append",
        type=key_argument,
        default=[],
        metavar="KEY[=VALUE]",
        help="keyword, (gggg,eeee) or gggg,eeee, with an optional value to "
        "match; Seq[0].Keyword=value for sequence items",
    )


def format_progress(remaining: int, completed: int, failed: int, warning: int) -> str:
    """Sub-operation counts of a C-GET/C-MOVE response; a negative remaining is absent."""
    counts = f"completed {completed}, failed {failed}, warning {warning}"
    return f"remaining {remaining}, {counts}" if remaining >= 0 else counts


def print_retrieve_response(
    program: str, status: int, counts: tuple[int, int, int, int], data_set: Dataset | None
) -> None:
    """A C-GET/C-MOVE response as it arrives: the counts of a pending one, the failed
    instances a final one lists."""
    if status == DicomCommandStatusType.Pending:
        print(f"{program}: pending: {format_progress(*counts)}", flush=True)
    elif failed_instances(data_set):
        print(f"{program}: failed instances:", *failed_instances(data_set), flush=True)
