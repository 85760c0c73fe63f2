"""Tests for dicomnet.errors: the LEADTOOLS constructors of DicomException and its subclasses."""

from __future__ import annotations

import pytest

from dicomnet.errors import (
    DEFAULT_CODE,
    AssociationAborted,
    AssociationRejected,
    DicomException,
    DicomExceptionCode,
    DIMSEError,
    PDUError,
)


def test_a_message_alone_raises_with_the_default_code() -> None:
    with pytest.raises(DicomException) as raised:
        raise DicomException("Invalid Abstract Syntax")
    assert raised.value.Code is DEFAULT_CODE is DicomExceptionCode.Parameter
    assert raised.value.message == raised.value.Message == "Invalid Abstract Syntax"
    assert str(raised.value) == "Invalid Abstract Syntax (Parameter)"
    assert raised.value.InnerException is None


def test_no_arguments_reads_as_the_default_code() -> None:
    error = DicomException()
    assert error.Code is DicomExceptionCode.Parameter
    assert error.Message == "Parameter"


def test_a_code_alone_or_with_a_message() -> None:
    timeout = DicomException(DicomExceptionCode.NetTimeout)
    assert (timeout.Code, timeout.Message) == (DicomExceptionCode.NetTimeout, "NetTimeout")
    refused = DicomException(DicomExceptionCode.NetConnectionRefused, "peer refused")
    assert (refused.Code, refused.Message) == (
        DicomExceptionCode.NetConnectionRefused,
        "peer refused",
    )
    assert str(refused) == "peer refused (NetConnectionRefused)"
    by_number = DicomException(56, "silent peer")
    assert by_number.Code is DicomExceptionCode.NetTimeout
    by_keyword = DicomException(code=DicomExceptionCode.NetFailure, message="down")
    assert (by_keyword.Code, by_keyword.Message) == (DicomExceptionCode.NetFailure, "down")


def test_a_message_with_an_inner_exception_chains_it() -> None:
    cause = OSError("disk full")
    error = DicomException("cannot keep the instance", cause)
    assert error.Code is DicomExceptionCode.Parameter
    assert error.InnerException is cause and error.__cause__ is cause
    chained = DicomException("again")
    try:
        raise chained from cause
    except DicomException:
        pass
    assert chained.InnerException is cause


@pytest.mark.parametrize(
    "arguments",
    [
        ("one message", "another message"),
        (DicomExceptionCode.NetFailure, OSError("not a message")),
        (2.5,),
        (b"bytes",),
    ],
)
def test_mixed_up_arguments_are_refused_clearly(arguments: tuple[object, ...]) -> None:
    with pytest.raises(TypeError):
        DicomException(*arguments)  # type: ignore[arg-type]


def test_an_undefined_code_number_is_refused() -> None:
    with pytest.raises(ValueError):
        DicomException(12345)


def test_subclasses_keep_their_constructors_and_codes() -> None:
    pdu = PDUError("lying length")
    assert (pdu.Code, pdu.Message) == (DicomExceptionCode.BadPDULength, "lying length")
    assert PDUError("bad type", DicomExceptionCode.BadPDUType).Code is DicomExceptionCode.BadPDUType
    assert DIMSEError("no Message ID").Code is DicomExceptionCode.Parameter
    rejected = AssociationRejected(1, 1, 7, "called AE title not recognized")
    assert (rejected.result, rejected.source, rejected.reason) == (1, 1, 7)
    assert rejected.Code is DicomExceptionCode.NetConnectionAborted
    aborted = AssociationAborted("peer aborted", 2, 6)
    assert (aborted.source, aborted.reason, aborted.Message) == (2, 6, "peer aborted")
    assert all(isinstance(error, DicomException) for error in (pdu, rejected, aborted))
