"""Data set bytes <-> pydicom ``Dataset`` in a negotiated transfer syntax (PS3.5 A.1-A.5).

DIMSE data sets travel without the Part-10 preamble and meta header, encoded in the
presentation context's transfer syntax: Implicit VR LE, Explicit VR LE, Explicit VR BE,
or Deflated Explicit VR LE (raw deflate of the Explicit VR LE bytes, PS3.5 A.5). Every
encapsulated (compressed) syntax is Explicit VR LE outside its pixel data, so its data
sets parse and encode the same way and the pixel fragments pass through untouched.
"""

from __future__ import annotations

import array
import zlib
from collections.abc import Iterable
from io import BytesIO
from typing import TYPE_CHECKING

from ..errors import DIMSEError
from ..uids import DEFLATED_EXPLICIT_VR_LE, EXPLICIT_VR_BE, IMPLICIT_VR_LE

if TYPE_CHECKING:  # pydicom is imported once a data set is encoded or decoded
    from pydicom import Dataset


def encoding_of(transfer_syntax: str) -> tuple[bool, bool]:
    """(implicit VR, little endian) of a transfer syntax."""
    if transfer_syntax == IMPLICIT_VR_LE:
        return True, True
    if transfer_syntax == EXPLICIT_VR_BE:
        return False, False
    return False, True


# Binary VRs made of 2-, 4- or 8-byte words, by the array typecode of that word size.
# pydicom keeps their values as raw bytes in the byte order they were read in and never
# swaps them itself.
_WORD_TYPECODES = {"OW": "H", "OF": "I", "OL": "I", "OD": "Q", "OV": "Q"}


def in_byte_order(dataset: Dataset, little_endian: bool) -> Dataset:
    """``dataset`` with its OW/OF/OL/OD/OV values in the wanted byte order.

    A data set read in the other byte order (a Big Endian file sent as Little Endian, or
    the reverse) gives a new Dataset with those values swapped; any other is returned
    as it is. The caller's data set is never modified.
    """
    read_little = dataset.original_encoding[1]
    if read_little is None or read_little == little_endian:
        return dataset
    from pydicom import DataElement, Dataset

    converted = Dataset()
    for element in dataset:
        value = element.value
        if element.VR == "SQ":
            value = [in_byte_order(item, little_endian) for item in value]
        elif element.VR in _WORD_TYPECODES and isinstance(value, bytes):
            words = array.array(_WORD_TYPECODES[element.VR])
            words.frombytes(value)  # a partial word raises: the data set is malformed
            words.byteswap()
            value = words.tobytes()
        converted.add(DataElement(element.tag, element.VR, value))
    return converted


def encode_dataset(dataset: Dataset, transfer_syntax: str) -> bytes:
    """Encode ``dataset`` for sending on a context with ``transfer_syntax``."""
    implicit, little = encoding_of(transfer_syntax)
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    buffer = DicomBytesIO()
    buffer.is_implicit_VR = implicit
    buffer.is_little_endian = little
    try:
        write_dataset(buffer, in_byte_order(dataset, little))
    except Exception as exc:  # pydicom raises many types for unencodable values
        raise DIMSEError(f"cannot encode data set in {transfer_syntax}: {exc}") from exc
    data = buffer.getvalue()
    if transfer_syntax == DEFLATED_EXPLICIT_VR_LE:
        compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -zlib.MAX_WBITS)
        data = compressor.compress(data) + compressor.flush()
    return data


def decode_dataset(data: bytes | memoryview, transfer_syntax: str, max_length: int) -> Dataset:
    """Parse received data set bytes; a malformed data set is a ``DIMSEError``.

    Every element is converted here, so a malformed value is reported now rather than
    raised by pydicom later, wherever the application first reads it. A deflated data
    set that inflates to more than ``max_length`` bytes (``NetConfig.max_inflated_data_set``)
    is a ``DIMSEError`` too.
    """
    raw = bytes(data)
    if transfer_syntax == DEFLATED_EXPLICIT_VR_LE:
        raw = _inflate(raw, max_length)
    implicit, little = encoding_of(transfer_syntax)
    from pydicom.filereader import read_dataset

    try:
        dataset = read_dataset(BytesIO(raw), implicit, little)
        for _ in dataset.iterall():  # iterating converts each raw element
            pass
    except Exception as exc:  # pydicom raises many types for malformed input
        raise DIMSEError(f"cannot parse data set in {transfer_syntax}: {exc}") from exc
    return dataset


def check_inflated_length(chunks: Iterable[bytes], max_length: int) -> None:
    """Raise ``DIMSEError`` unless the deflated data set in ``chunks`` inflates to at
    most ``max_length`` bytes (it is inflated and dropped piece by piece)."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    try:
        for chunk in chunks:
            data = chunk
            while data:
                total += len(inflater.decompress(data, _INFLATE_STEP))
                if total > max_length:
                    raise DIMSEError(f"deflated data set inflates to more than {max_length} bytes")
                data = inflater.unconsumed_tail
    except zlib.error as exc:
        raise DIMSEError(f"cannot inflate deflated data set: {exc}") from exc


_INFLATE_STEP = 1 << 20  # bytes inflated at a time when only the length is wanted


def _inflate(raw: bytes, max_length: int) -> bytes:
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        inflated = inflater.decompress(raw, max_length)
    except zlib.error as exc:
        raise DIMSEError(f"cannot inflate deflated data set: {exc}") from exc
    if inflater.unconsumed_tail:
        raise DIMSEError(f"deflated data set inflates to more than {max_length} bytes")
    return inflated
