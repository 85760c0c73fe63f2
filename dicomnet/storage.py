"""Storing received instances safely, and sending stored ones (PS3.4 annex B).

Receiving: a C-STORE's data arrives spooled as a complete Part-10 file
(``DicomNet.received_file``, with ``parse_received_data = False``); ``keep_received_file``
moves it atomically to a name derived from its UIDs. UIDs come from the network, so a
name is built only from a well-formed UID (PS3.5 9.1), never from a path a peer chose.

Sending: the contexts to propose for a set of files (``storage_contexts_for``), the
accepted context to send each one on (``pick_context``), and one blocking C-STORE
(``send_instance``), the data set read from disk as it is sent; or its two halves
(``send_store_request``, ``store_response``), to keep several C-STOREs outstanding
where the peer accepted an asynchronous operations window.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from .associate import NegotiatedContext
from .dimse.part10 import CONVERTIBLE_TRANSFER_SYNTAXES, Part10File, read_part10_header
from .enums import DicomCommandPriorityType
from .errors import DicomException, DicomExceptionCode, DIMSEError
from .net import DicomNet
from .response import Response
from .scu import ContextSpec
from .uids import EXPLICIT_VR_LE, IMPLICIT_VR_LE, is_valid_uid

# Words of SOP class names that say nothing about the kind of data.
_NOT_IN_ABBREVIATION = {"Image", "Storage"}
# What an uncompressed file may also be sent in (the library converts it).
_CONVERSION_TARGETS = (EXPLICIT_VR_LE, IMPLICIT_VR_LE)


# -- receiving -----------------------------------------------------------------------


@functools.lru_cache(maxsize=256)  # a handful of classes in practice; pydicom's UID is slow
def sop_class_abbreviation(sop_class: str) -> str:
    """A short modality-like prefix for file names ("CT", "MR", "SC", "DX"...).

    The first acronym of the SOP class name ("Enhanced CT Image Storage" -> "CT"), else
    the initials of its words ("Secondary Capture Image Storage" -> "SC"); "UNKNOWN" for
    a UID pydicom does not know.
    """
    from pydicom.uid import UID  # the dictionary of names: loaded by the first file kept

    name = UID(sop_class).name.split(" - ")[0]
    words = [word for word in name.split() if word not in _NOT_IN_ABBREVIATION]
    for word in words:
        if len(word) >= 2 and word.isascii() and word.isalnum() and word.isupper():
            return word
    initials = "".join(word[0] for word in words if word[0].isascii() and word[0].isalpha())
    return initials.upper()[:8] or "UNKNOWN"


def instance_file_name(sop_class: str, sop_instance: str) -> str:
    """``<abbreviation>.<SOP Instance UID>``, as DCMTK's storescp names received files.

    Anything but a well-formed instance UID (leading zeros tolerated) is replaced by a
    random name, so a peer can never choose a path: no separator, no "..", no space.
    """
    prefix = sop_class_abbreviation(sop_class)
    if is_valid_uid(sop_instance, strict=False):
        return f"{prefix}.{sop_instance}"
    return f"{prefix}.invalid-uid-{uuid.uuid4().hex}"


def _default_file_mode() -> int:
    # The umask can only be read by setting it; done once, at import, before any thread.
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


RECEIVED_FILE_MODE = _default_file_mode()
"""The mode a kept instance gets: the usual one under the umask (spool files are private)."""


def keep_received_file(
    received_file: str | os.PathLike[str],
    directory: str | os.PathLike[str],
    sop_class: str,
    sop_instance: str,
) -> Path:
    """Move a received (spooled, complete) Part-10 file to its safe name in ``directory``
    and give it ``RECEIVED_FILE_MODE``; the new path. An instance with the same name is
    replaced.

    ``os.replace`` is atomic within one file system, so the file appears complete or not
    at all: the spool directory (the ``DicomNet`` temp path) must be on the same file
    system as ``directory``. Raises ``OSError`` when the move fails.
    """
    target = Path(directory) / instance_file_name(sop_class, sop_instance)
    os.chmod(received_file, RECEIVED_FILE_MODE)
    os.replace(received_file, target)
    return target


# -- finding files to send -----------------------------------------------------------


def iter_files(arguments: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Every file named, and every file under every directory named (sorted)."""
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            yield from sorted(child for child in path.rglob("*") if child.is_file())
        else:
            yield path


def read_headers(
    paths: Iterable[str | os.PathLike[str]],
    on_error: Callable[[str, DicomException | OSError], None],
) -> list[Part10File]:
    """The Part-10 meta headers of ``paths``; ``on_error(path, error)`` hears about the
    files that are not DICOM Part-10 or cannot be read, which are left out."""
    headers: list[Part10File] = []
    for path in paths:
        try:
            headers.append(read_part10_header(path))
        except (DicomException, OSError) as exc:
            on_error(os.fspath(path), exc)
    return headers


# -- sending -------------------------------------------------------------------------


class SendBroken(DicomException):
    """The file broke (deleted, truncated, unreadable) while its data set was being
    sent. Nothing may follow half a message (PS3.8 annex E), so the association was
    aborted; other files can go on a new one."""


def storage_contexts_for(files: Iterable[Part10File]) -> list[ContextSpec]:
    """One context per (SOP class, transfer syntax) of ``files``, in order of first use:
    the file's own transfer syntax first, then for an uncompressed file the uncompressed
    ones the library can convert it to."""
    pairs = dict.fromkeys((f.sop_class_uid, f.transfer_syntax) for f in files)
    contexts: list[ContextSpec] = []
    for sop_class, transfer_syntax in pairs:
        syntaxes = [transfer_syntax]
        if transfer_syntax in CONVERTIBLE_TRANSFER_SYNTAXES:
            syntaxes += [s for s in _CONVERSION_TARGETS if s != transfer_syntax]
        contexts.append((sop_class, syntaxes))
    return contexts


def pick_context(
    contexts: Iterable[NegotiatedContext], sop_class: str, transfer_syntax: str
) -> NegotiatedContext | None:
    """The context to send a file of ``sop_class`` in ``transfer_syntax`` on: one with the
    file's own transfer syntax (sent as it is), else, for an uncompressed file, one with
    another uncompressed transfer syntax (converted); None when there is neither."""
    candidates = [c for c in contexts if c.abstract_syntax == sop_class]
    for context in candidates:
        if context.transfer_syntax == transfer_syntax:
            return context
    if transfer_syntax in CONVERTIBLE_TRANSFER_SYNTAXES:
        for context in candidates:
            if context.transfer_syntax in CONVERTIBLE_TRANSFER_SYNTAXES:
                return context
    return None


def send_instance(
    net: DicomNet,
    contexts: Sequence[NegotiatedContext],
    part10: Part10File,
    *,
    move_originator: str = "",
    move_message_id: int = 0,
    timeout: float | None = None,
) -> Response:
    """C-STORE ``part10`` (``send_store_request``) and wait for the response
    (``store_response``)."""
    message_id = send_store_request(
        net, contexts, part10, move_originator=move_originator, move_message_id=move_message_id
    )
    return store_response(net, message_id, timeout)


def send_store_request(
    net: DicomNet,
    contexts: Sequence[NegotiatedContext],
    part10: Part10File,
    *,
    move_originator: str = "",
    move_message_id: int = 0,
) -> int:
    """Send a C-STORE of ``part10`` on the context ``pick_context`` chooses among
    ``contexts``, without waiting for its response; its message ID. A C-MOVE
    sub-operation names its originator and request. Raises ``DicomException``
    (Parameter) when no context fits, ``DIMSEError`` when the file cannot be read or
    converted (nothing was sent: the association goes on)."""
    context = pick_context(contexts, part10.sop_class_uid, part10.transfer_syntax)
    if context is None:
        raise DicomException(
            DicomExceptionCode.Parameter,
            f"the peer accepted neither SOP class {part10.sop_class_uid} in "
            f"{part10.transfer_syntax} nor a syntax it can be converted to "
            "(with the role needed)",
        )
    message_id = net.next_message_id()
    try:
        net.SendCStoreRequest(
            context.context_id,
            message_id,
            part10.sop_class_uid,
            part10.sop_instance_uid,
            DicomCommandPriorityType.Medium,
            move_originator,
            move_message_id,
            part10,
        )
    except OSError as exc:  # gone since its header was read: nothing was sent
        raise DIMSEError(f"cannot read {part10.path}: {exc.strerror or exc}") from exc
    return message_id


def store_response(net: DicomNet, message_id: int, timeout: float | None = None) -> Response:
    """The response to the C-STORE ``message_id`` (``timeout`` as
    ``DicomNet.wait_response``). Raises ``SendBroken`` when its file broke while being
    sent (the association was aborted), ``DicomException`` when no response comes."""
    try:
        return net.wait_response(message_id, timeout)
    except DicomException as exc:
        # NetFailure is how wait_response says our own request could not be sent whole
        if exc.Code == DicomExceptionCode.NetFailure:
            raise SendBroken(exc.Code, exc.message) from exc
        raise
