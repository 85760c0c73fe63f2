"""Tests for dicomnet.associate: the DicomAssociate builder, its PDU conversion and the
acceptor's negotiation (PS3.8 7.1.1.13-14, PS3.7 annex D.3.3)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dicomnet import uids
from dicomnet.associate import (
    DEFAULT_MAX_LENGTH,
    AcceptPolicy,
    DicomAssociate,
    build_accept,
    negotiated_contexts,
    negotiated_roles,
)
from dicomnet.enums import DicomAssociateAcceptResultType as Result
from dicomnet.enums import DicomRoleSupport
from dicomnet.errors import DicomException, DicomExceptionCode, PDUError
from dicomnet.pdu import (
    AssociateAC,
    AssociateRQ,
    PresentationContextRQ,
    UnknownSubItem,
    UserIdentityRQ,
    decode_pdu,
    encode_pdu,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "pdus"

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.1"
PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
PATIENT_ROOT_GET = "1.2.840.10008.5.1.4.1.2.1.3"
STORAGE_SERVICE_CLASS = "1.2.840.10008.4.2"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
ILE, ELE, EBE = uids.IMPLICIT_VR_LE, uids.EXPLICIT_VR_LE, uids.EXPLICIT_VR_BE
DEFLATE = uids.DEFLATED_EXPLICIT_VR_LE


def fixture_pdus(name: str) -> list[tuple[str, bytes]]:
    lines = (FIXTURES / f"{name}.pdus").read_text().split("\n")
    return [
        (direction, bytes.fromhex(hex_)) for direction, hex_ in (ln.split() for ln in lines if ln)
    ]


def decode_associate(data: bytes) -> AssociateRQ | AssociateAC:
    pdu = decode_pdu(data)
    assert isinstance(pdu, AssociateRQ | AssociateAC)
    return pdu


def recorded_negotiation(name: str) -> tuple[DicomAssociate, DicomAssociate]:
    """The fixture's RQ and AC read through decode_pdu and from_pdu."""
    (_, rq_bytes), (_, ac_bytes) = fixture_pdus(name)[:2]
    request = DicomAssociate.from_pdu(decode_associate(rq_bytes))
    return request, DicomAssociate.from_pdu(decode_associate(ac_bytes), request)


def context_ids(associate: DicomAssociate) -> list[int]:
    return [
        associate.GetPresentationContextID(i) for i in range(associate.PresentationContextCount)
    ]


def transfers(associate: DicomAssociate, id: int) -> list[str]:
    return [associate.GetTransfer(id, i) for i in range(associate.GetTransferCount(id))]


def make_request(*contexts: tuple[int, str, list[str]]) -> DicomAssociate:
    request = DicomAssociate(True)
    request.Called, request.Calling = "STORESCP", "STORESCU"
    for id, abstract_syntax, transfer_syntaxes in contexts:
        request.AddPresentationContext(id, Result.Success, abstract_syntax)
        for transfer_syntax in transfer_syntaxes:
            request.AddTransfer(id, transfer_syntax)
    return request


def expect_parameter_error(call, *args) -> DicomException:
    with pytest.raises(DicomException) as caught:
        call(*args)
    assert caught.value.Code is DicomExceptionCode.Parameter
    return caught.value


# -- builder: defaults, contexts, lookups ---------------------------------------------------


@pytest.mark.parametrize("request_kind", [True, False])
def test_new_object_holds_the_defaults(request_kind: bool) -> None:
    associate = DicomAssociate(request_kind)
    assert associate.IsRequest is request_kind
    assert associate.Version == 1
    assert associate.ApplicationContextName == "1.2.840.10008.3.1.1.1"
    assert associate.ImplementClass == uids.IMPLEMENTATION_CLASS_UID
    assert associate.ImplementationVersionName == uids.IMPLEMENTATION_VERSION_NAME
    assert associate.MaxLength == DEFAULT_MAX_LENGTH == 131072
    assert not associate.IsAsynchronousOperations
    assert (associate.InvokedOperationsCount, associate.PerformedOperationsCount) == (1, 1)
    assert associate.PresentationContextCount == 0
    assert associate.UserInformationCount == 0
    assert associate.user_identity is None and associate.user_identity_response is None


def test_reset_clears_everything_and_switches_kind() -> None:
    associate = DicomAssociate(False)
    associate.Called, associate.Calling = "SCP", "SCU"
    associate.AddPresentationContext(1, Result.Success, CT)
    associate.MaxLength = 0
    associate.SetAsynchronousOperations(True, 5, 5)
    associate.AddUserInformation(0x70, b"x")
    associate.Reset(True)
    assert associate.IsRequest
    assert (associate.Called, associate.Calling) == ("", "")
    assert associate.PresentationContextCount == 0 and associate.UserInformationCount == 0
    assert associate.MaxLength == DEFAULT_MAX_LENGTH
    assert not associate.IsAsynchronousOperations


def test_reset_of_a_request_to_an_accept_keeps_what_the_accept_answers() -> None:
    associate = make_request((1, CT, [ELE]), (3, MR, [ELE, ILE]))
    associate.MaxLength = 0
    associate.SetAsynchronousOperations(True, 5, 5)
    associate.AddUserInformation(0x70, b"x")
    associate.set_user_identity(1, "bob")
    called, calling = associate.Called, associate.Calling
    associate.Reset(False)
    assert not associate.IsRequest
    assert (associate.Called, associate.Calling) == (called, calling)
    assert context_ids(associate) == [1, 3]
    assert [associate.GetAbstract(i) for i in (1, 3)] == [CT, MR]
    assert all(
        associate.GetResult(i) == Result.ProviderReject and associate.GetTransferCount(i) == 0
        for i in (1, 3)
    )
    assert associate.UserInformationCount == 0 and associate.user_identity is None
    assert associate.MaxLength == DEFAULT_MAX_LENGTH
    assert not associate.IsAsynchronousOperations
    associate.SetResult(1, Result.Success)
    associate.AddTransfer(1, ELE)
    accept = associate.to_accept_pdu()
    assert [(c.context_id, c.result, c.transfer_syntax) for c in accept.presentation_contexts] == [
        (1, 0, ELE),
        (3, Result.ProviderReject, ""),
    ]


def reset_to_accept(request: DicomAssociate) -> DicomAssociate:
    """The LEADTOOLS SCP pattern: turn the received request into its accept in place."""
    request.Reset(False)
    for id in context_ids(request):
        request.SetResult(id, Result.Success)
        request.AddTransfer(id, ILE)
    return request


def test_an_accept_made_by_reset_still_stands_for_its_request_when_decoding() -> None:
    request = make_request((1, CT, [ELE, ILE]), (3, PATIENT_ROOT_GET, [ILE]))
    request.SetRoleSelect(3, True, DicomRoleSupport.Supported, DicomRoleSupport.Supported)
    received = DicomAssociate.from_pdu(request.to_request_pdu())
    accept = reset_to_accept(received)
    accept.SetRoleSelect(3, True, DicomRoleSupport.Supported, DicomRoleSupport.Supported)
    pdu = accept.to_accept_pdu()
    decoded = DicomAssociate.from_pdu(pdu, accept)
    assert not decoded.IsRequest
    assert [decoded.GetAbstract(id) for id in (1, 3)] == [CT, PATIENT_ROOT_GET]
    assert [decoded.accepted_transfer_syntax(id) for id in (1, 3)] == [ILE, ILE]
    assert decoded.IsRoleSelect(3) and not decoded.IsRoleSelect(1)
    # the proposal (roles, transfer syntaxes) is read from the request the accept answers
    assert negotiated_roles(accept, decoded, 3) == (True, True)
    assert negotiated_roles(accept, decoded, 1) == (True, False)
    assert list(negotiated_contexts(accept, decoded)) == [1, 3]


def test_the_request_kept_by_reset_is_the_request_before_the_reset() -> None:
    received = make_request((1, CT, [ELE]), (3, MR, [ILE]))
    accept = reset_to_accept(received)
    accept.DeletePresentation(3)  # editing the accept does not rewrite the proposal
    again = build_accept(accept, AcceptPolicy(supported={CT: [ELE], MR: [ILE]}))
    assert context_ids(again) == [1, 3]
    assert [again.accepted_transfer_syntax(id) for id in (1, 3)] == [ELE, ILE]


def test_only_a_request_or_an_accept_reset_from_one_can_decode_an_accept() -> None:
    accept = reset_to_accept(make_request((1, CT, [ELE])))
    pdu = accept.to_accept_pdu()
    blank = DicomAssociate(False)
    error = expect_parameter_error(DicomAssociate.from_pdu, pdu, blank)
    assert "association's request" in error.message
    reused = reset_to_accept(make_request((1, CT, [ELE])))
    reused.Reset(False)  # resetting the accept itself starts from nothing, request included
    assert reused.PresentationContextCount == 0
    expect_parameter_error(DicomAssociate.from_pdu, pdu, reused)
    expect_parameter_error(build_accept, blank, AcceptPolicy(supported={CT: [ELE]}))


def test_default_restores_values_but_keeps_contexts() -> None:
    associate = make_request((1, CT, [ELE]))
    associate.Version, associate.MaxLength, associate.ImplementClass = 3, 99, "1.2.3"
    associate.Default()
    assert (associate.Version, associate.MaxLength) == (1, DEFAULT_MAX_LENGTH)
    assert associate.ImplementClass == uids.IMPLEMENTATION_CLASS_UID
    assert context_ids(associate) == [1]


def test_contexts_and_transfer_syntaxes_are_edited_by_id() -> None:
    associate = make_request((1, CT, [ELE, ILE]), (3, MR, [ILE]), (5, CT, [JPEG_BASELINE]))
    assert context_ids(associate) == [1, 3, 5]
    assert transfers(associate, 1) == [ELE, ILE]
    associate.SetTransfer(1, 1, EBE)
    associate.DeleteTransfer(1, 0)
    assert transfers(associate, 1) == [EBE]
    associate.SetAbstract(3, ENHANCED_CT)
    assert associate.GetAbstract(3) == ENHANCED_CT
    associate.SetResult(3, Result.TransferSyntax)
    assert associate.GetResult(3) is Result.TransferSyntax
    associate.SetPresentationContextID(0, 7)
    associate.DeletePresentation(5)
    assert context_ids(associate) == [7, 3]
    assert associate.GetAbstract(7) == CT


def test_find_abstract_walks_contexts_like_leadtools_code_does() -> None:
    associate = make_request((1, CT, [ELE]), (3, MR, [ELE]), (5, CT, [ILE]), (7, CT, [EBE]))
    found = []
    id = associate.FindAbstract(CT)
    while id:
        found.append(id)
        id = associate.FindNextAbstract(id, CT)
    assert found == [1, 5, 7]
    assert associate.FindAbstract(ENHANCED_CT) == 0
    assert associate.FindNextAbstract(3, MR) == 0


@pytest.mark.parametrize("uid", ["0", "1.2.840.10008.1.2", "2.25." + "1" * 59, "1.0.3"])
def test_valid_uids_are_taken(uid: str) -> None:
    associate = make_request()
    associate.AddPresentationContext(1, Result.Success, uid)
    associate.AddTransfer(1, uid)
    assert associate.GetAbstract(1) == associate.GetTransfer(1, 0) == uid


@pytest.mark.parametrize(
    "uid",
    [
        "",
        "1.02",
        "01.2",
        "1..2",
        ".1.2",
        "1.2.",
        "1.2.a",
        " 1.2",
        "1.2\0",
        "2.25." + "1" * 60,
        "١.٢",
    ],
)
def test_invalid_uids_are_refused(uid: str) -> None:
    associate = make_request((1, CT, [ELE]))
    error = expect_parameter_error(associate.AddPresentationContext, 3, Result.Success, uid)
    assert "UID" in error.message
    expect_parameter_error(associate.AddTransfer, 1, uid)
    expect_parameter_error(associate.SetAbstract, 1, uid)
    expect_parameter_error(associate.SetTransfer, 1, 0, uid)
    assert transfers(associate, 1) == [ELE] and associate.GetAbstract(1) == CT


@pytest.mark.parametrize("id", [0, 2, 256, 257, -1, 254])
def test_context_ids_must_be_odd_from_1_to_255(id: int) -> None:
    associate = make_request((1, CT, [ELE]))
    expect_parameter_error(associate.AddPresentationContext, id, Result.Success, CT)
    expect_parameter_error(associate.SetPresentationContextID, 0, id)


def test_context_ids_must_be_unique() -> None:
    associate = make_request((1, CT, [ELE]), (3, CT, [ELE]))
    error = expect_parameter_error(associate.AddPresentationContext, 3, Result.Success, MR)
    assert "3" in error.message
    expect_parameter_error(associate.SetPresentationContextID, 0, 3)
    associate.SetPresentationContextID(0, 1)  # keeping its own ID is not a clash


def test_at_most_128_contexts() -> None:
    associate = make_request(*((id, CT, [ELE]) for id in range(1, 256, 2)))
    assert associate.PresentationContextCount == 128
    associate.DeletePresentation(255)
    associate.AddPresentationContext(255, Result.Success, MR)
    assert associate.GetAbstract(255) == MR


@pytest.mark.parametrize(
    "call",
    [
        lambda a: a.GetAbstract(9),
        lambda a: a.SetAbstract(9, CT),
        lambda a: a.GetResult(9),
        lambda a: a.SetResult(9, Result.Success),
        lambda a: a.DeletePresentation(9),
        lambda a: a.FindNextAbstract(9, CT),
        lambda a: a.GetTransferCount(9),
        lambda a: a.GetTransfer(9, 0),
        lambda a: a.AddTransfer(9, ELE),
        lambda a: a.IsRoleSelect(9),
        lambda a: a.SetRoleSelect(9, True, 1, 1),
        lambda a: a.SetExtendedData(9, b"\x01"),
        lambda a: a.GetExtendedData(9),
        lambda a: a.GetTransfer(1, 1),
        lambda a: a.SetTransfer(1, 1, ELE),
        lambda a: a.DeleteTransfer(1, -1),
        lambda a: a.GetPresentationContextID(1),
        lambda a: a.GetUserInformationType(0),
        lambda a: a.DeleteUserInformation(0),
    ],
)
def test_unknown_ids_and_indexes_are_parameter_errors(call) -> None:
    associate = make_request((1, CT, [ELE]))
    expect_parameter_error(call, associate)


def test_results_and_roles_must_be_enum_values() -> None:
    associate = make_request((1, CT, [ELE]))
    expect_parameter_error(associate.AddPresentationContext, 3, 5, CT)
    expect_parameter_error(associate.SetResult, 1, -1)
    expect_parameter_error(associate.SetRoleSelect, 1, True, 2, 0)
    assert associate.GetResult(1) is Result.Success and not associate.IsRoleSelect(1)


def test_an_accept_context_takes_one_transfer_syntax() -> None:
    accept = DicomAssociate(False)
    accept.AddPresentationContext(1, Result.Success, CT)
    accept.AddTransfer(1, ELE)
    expect_parameter_error(accept.AddTransfer, 1, ILE)
    assert accept.accepted_transfer_syntax(1) == ELE
    accept.SetResult(1, Result.UserReject)
    assert accept.accepted_transfer_syntax(1) is None
    expect_parameter_error(make_request((1, CT, [ELE])).accepted_transfer_syntax, 1)


# -- builder: negotiation sub-items -----------------------------------------------------------


def test_asynchronous_operations_window() -> None:
    associate = DicomAssociate()
    associate.SetAsynchronousOperations(True, 0, 7)
    assert associate.IsAsynchronousOperations
    assert (associate.InvokedOperationsCount, associate.PerformedOperationsCount) == (0, 7)
    expect_parameter_error(associate.SetAsynchronousOperations, True, 65536, 1)
    expect_parameter_error(associate.SetAsynchronousOperations, True, 1, -1)
    assert associate.PerformedOperationsCount == 7


def test_role_selection_per_context() -> None:
    associate = make_request((1, CT, [ELE]), (3, MR, [ELE]))
    associate.SetRoleSelect(1, True, DicomRoleSupport.Unsupported, DicomRoleSupport.Supported)
    assert associate.IsRoleSelect(1) and not associate.IsRoleSelect(3)
    assert associate.GetUserRole(1) is DicomRoleSupport.Unsupported
    assert associate.GetProviderRole(1) is DicomRoleSupport.Supported
    associate.SetRoleSelect(1, False, 1, 1)
    assert not associate.IsRoleSelect(1)
    assert associate.to_pdu().user_information.role_selections == []


def test_extended_data_per_context() -> None:
    associate = make_request((1, PATIENT_ROOT_FIND, [ELE]))
    assert associate.GetExtendedData(1) is None and associate.GetExtendedDataLength(1) == 0
    associate.SetExtendedData(1, b"\x01\x01\x00")
    assert associate.GetExtendedData(1) == b"\x01\x01\x00"
    assert associate.GetExtendedDataLength(1) == 3
    expect_parameter_error(associate.SetExtendedData, 1, b"\x00" * 65535)
    expect_parameter_error(associate.SetExtendedData, 1, "text")
    associate.SetExtendedData(1, None)
    assert associate.GetExtendedData(1) is None


def test_raw_user_information_items() -> None:
    associate = DicomAssociate()
    associate.AddUserInformation(0x70, b"abc")
    associate.AddUserInformation(0x5A, b"")
    associate.SetUserInformation(1, 0x71, b"xy")
    assert associate.UserInformationCount == 2
    assert [associate.GetUserInformationType(i) for i in range(2)] == [0x70, 0x71]
    assert associate.GetUserInformationData(1) == b"xy"
    assert associate.GetUserInformationDataLength(0) == 3
    associate.DeleteUserInformation(0)
    assert associate.GetUserInformationType(0) == 0x71
    for typed in range(0x51, 0x5A):
        expect_parameter_error(associate.AddUserInformation, typed, b"")
    expect_parameter_error(associate.AddUserInformation, 256, b"")
    expect_parameter_error(associate.SetUserInformation, 0, 0x58, b"")
    expect_parameter_error(associate.AddUserInformation, 0x70, b"\0" * 65536)


def test_user_identity_is_typed_and_checked() -> None:
    associate = DicomAssociate()
    associate.set_user_identity(2, "jürgen", "pässwort", positive_response_requested=True)
    assert associate.user_identity == UserIdentityRQ(
        2, True, "jürgen".encode(), "pässwort".encode()
    )
    associate.set_user_identity(5, b"eyJ.jwt.sig")
    assert associate.user_identity == UserIdentityRQ(5, False, b"eyJ.jwt.sig", b"")
    expect_parameter_error(associate.set_user_identity, 1, "bob", "secret")
    expect_parameter_error(associate.set_user_identity, 6, "bob")
    expect_parameter_error(associate.set_user_identity, 0, "bob")
    expect_parameter_error(associate.set_user_identity, 1, "")
    expect_parameter_error(associate.set_user_identity, 3, b"\0" * 65530)
    expect_parameter_error(associate.set_user_identity, 2, b"\0" * 65000, b"\0" * 530)
    assert associate.user_identity is not None and associate.user_identity.identity_type == 5
    associate.set_user_identity(2, b"\0" * 65000, b"\0" * 529)  # fills the 58H item exactly
    assert associate.user_identity.secondary_field == b"\0" * 529
    associate.user_identity = None
    assert associate.user_identity is None


def test_items_that_belong_to_the_other_pdu_are_refused() -> None:
    request, accept = DicomAssociate(True), DicomAssociate(False)
    expect_parameter_error(accept.set_user_identity, 1, "bob")
    expect_parameter_error(setattr, request, "user_identity_response", b"")
    expect_parameter_error(accept.add_common_extended_negotiation, CT, STORAGE_SERVICE_CLASS)
    accept.user_identity_response = b"ticket"
    assert accept.user_identity_response == b"ticket"


def test_common_extended_negotiation() -> None:
    associate = DicomAssociate()
    associate.add_common_extended_negotiation(CT, STORAGE_SERVICE_CLASS, [ENHANCED_CT])
    associate.add_common_extended_negotiation(MR, STORAGE_SERVICE_CLASS)
    items = associate.common_extended_negotiation
    assert [(i.sop_class_uid, i.related_general_sop_classes) for i in items] == [
        (CT, [ENHANCED_CT]),
        (MR, []),
    ]
    items[0].related_general_sop_classes.append(MR)  # a copy: the builder is unchanged
    assert associate.common_extended_negotiation[0].related_general_sop_classes == [ENHANCED_CT]
    expect_parameter_error(associate.add_common_extended_negotiation, CT, STORAGE_SERVICE_CLASS)
    expect_parameter_error(associate.add_common_extended_negotiation, "1.x", STORAGE_SERVICE_CLASS)
    expect_parameter_error(associate.add_common_extended_negotiation, ENHANCED_CT, "4.02")
    expect_parameter_error(associate.add_common_extended_negotiation, ENHANCED_CT, CT, ["1."])
    assert len(associate.common_extended_negotiation) == 2


def test_context_manager_and_repr() -> None:
    with make_request((1, CT, [ELE]), (3, MR, [ELE])) as associate:
        text = repr(associate)
    assert "RQ" in text and "STORESCU" in text and "STORESCP" in text and "contexts=2" in text
    assert "AC" in repr(DicomAssociate(False))


# -- to_pdu ---------------------------------------------------------------------------------


def rich_request() -> DicomAssociate:
    request = make_request(
        (1, CT, [ELE, ILE]),
        (3, CT, [JPEG_BASELINE]),
        (5, MR, [ELE]),
        (7, PATIENT_ROOT_FIND, [ILE]),
        (9, PATIENT_ROOT_GET, [ILE]),
    )
    request.SetRoleSelect(1, True, 0, 1)
    request.SetRoleSelect(3, True, 0, 1)
    request.SetRoleSelect(5, True, 1, 1)
    request.SetExtendedData(7, b"\x01\x01")
    request.SetExtendedData(9, b"\x01")
    request.SetAsynchronousOperations(True, 3, 4)
    request.add_common_extended_negotiation(CT, STORAGE_SERVICE_CLASS, [ENHANCED_CT])
    request.set_user_identity(2, "alice", "s3cret", positive_response_requested=True)
    request.AddUserInformation(0x70, b"\x00private")
    return request


def test_request_to_pdu_maps_every_member() -> None:
    pdu = rich_request().to_pdu()
    assert isinstance(pdu, AssociateRQ)
    assert (pdu.called_ae, pdu.calling_ae, pdu.protocol_version) == ("STORESCP", "STORESCU", 1)
    assert pdu.application_context == uids.APPLICATION_CONTEXT
    assert pdu.presentation_contexts[0] == PresentationContextRQ(1, CT, [ELE, ILE])
    assert [c.context_id for c in pdu.presentation_contexts] == [1, 3, 5, 7, 9]
    info = pdu.user_information
    assert info.max_length == DEFAULT_MAX_LENGTH
    assert info.implementation_class_uid == uids.IMPLEMENTATION_CLASS_UID
    assert info.implementation_version_name == uids.IMPLEMENTATION_VERSION_NAME
    assert info.async_ops_window == (3, 4)
    # two CT contexts, one 54H item for the SOP class
    assert [(r.sop_class_uid, r.scu_role, r.scp_role) for r in info.role_selections] == [
        (CT, False, True),
        (MR, True, True),
    ]
    assert [(e.sop_class_uid, e.application_info) for e in info.sop_class_extended] == [
        (PATIENT_ROOT_FIND, b"\x01\x01"),
        (PATIENT_ROOT_GET, b"\x01"),
    ]
    assert info.sop_class_common_extended[0].service_class_uid == STORAGE_SERVICE_CLASS
    assert info.user_identity_rq == UserIdentityRQ(2, True, b"alice", b"s3cret")
    assert info.user_identity_ac is None
    assert info.unknown == [UnknownSubItem(0x70, b"\x00private")]


def test_async_item_and_version_name_are_only_sent_when_set() -> None:
    request = make_request((1, CT, [ELE]))
    request.SetAsynchronousOperations(False, 5, 5)
    request.ImplementationVersionName = ""
    info = request.to_pdu().user_information
    assert info.async_ops_window is None
    assert info.implementation_version_name is None
    assert b"\x53\x00\x00\x04" not in encode_pdu(request.to_pdu())


def test_a_context_without_role_shares_its_sop_class_role() -> None:
    request = make_request((1, CT, [ELE]), (3, CT, [ILE]))
    request.SetRoleSelect(3, True, 1, 1)
    [role] = request.to_pdu().user_information.role_selections
    assert (role.sop_class_uid, role.scu_role, role.scp_role) == (CT, True, True)
    decoded = DicomAssociate.from_pdu(request.to_pdu())
    assert decoded.IsRoleSelect(1) and decoded.IsRoleSelect(3)


def test_conflicting_settings_for_one_sop_class_cannot_be_encoded() -> None:
    request = make_request((1, CT, [ELE]), (3, CT, [ILE]))
    request.SetRoleSelect(1, True, 1, 0)
    request.SetRoleSelect(3, True, 0, 1)
    error = expect_parameter_error(request.to_pdu)
    assert CT in error.message and "role" in error.message
    request.SetRoleSelect(3, True, 1, 0)
    request.SetExtendedData(1, b"\x01")
    request.SetExtendedData(3, b"\x00")
    expect_parameter_error(request.to_pdu)


@pytest.mark.parametrize(
    "spoil",
    [
        lambda a: a.DeletePresentation(1),  # a request needs a context
        lambda a: a.DeleteTransfer(1, 0),  # and each context a transfer syntax
        lambda a: setattr(a, "ImplementClass", ""),
        lambda a: setattr(a, "ImplementClass", "1.2.03"),
        lambda a: setattr(a, "ApplicationContextName", "x"),
        lambda a: setattr(a, "MaxLength", -1),
        lambda a: setattr(a, "MaxLength", 1 << 32),
        lambda a: setattr(a, "Version", 1 << 16),
    ],
)
def test_to_pdu_refuses_what_cannot_be_sent(spoil) -> None:
    request = make_request((1, CT, [ELE]))
    spoil(request)
    expect_parameter_error(request.to_pdu)


def test_an_accepted_context_needs_its_transfer_syntax() -> None:
    accept = DicomAssociate(False)
    accept.Called, accept.Calling = "SCP", "SCU"
    accept.AddPresentationContext(1, Result.AbstractSyntax, CT)
    assert accept.to_accept_pdu().presentation_contexts[0].transfer_syntax == ""
    accept.AddPresentationContext(3, Result.Success, CT)
    expect_parameter_error(accept.to_pdu)


def test_typed_conversions_refuse_the_other_kind() -> None:
    request = make_request((1, CT, [ELE]))
    accept = build_accept(request, AcceptPolicy({CT: [ELE]}))
    assert request.to_request_pdu() == request.to_pdu()
    assert accept.to_accept_pdu() == accept.to_pdu()
    expect_parameter_error(request.to_accept_pdu)
    expect_parameter_error(accept.to_request_pdu)


def test_to_pdu_does_not_share_state_with_the_builder() -> None:
    request = rich_request()
    pdu = request.to_request_pdu()
    pdu.presentation_contexts[0].transfer_syntaxes.append(EBE)
    pdu.user_information.unknown[0].data = b""
    assert transfers(request, 1) == [ELE, ILE]
    assert request.GetUserInformationData(0) == b"\x00private"


# -- from_pdu and round trips -----------------------------------------------------------------


def test_request_round_trip_keeps_every_member() -> None:
    original = rich_request()
    wire = encode_pdu(original.to_pdu())
    decoded = DicomAssociate.from_pdu(decode_associate(wire))
    assert decoded.IsRequest
    assert context_ids(decoded) == [1, 3, 5, 7, 9]
    assert [decoded.GetAbstract(id) for id in (1, 3, 5)] == [CT, CT, MR]
    assert transfers(decoded, 1) == [ELE, ILE]
    assert (decoded.GetUserRole(3), decoded.GetProviderRole(3)) == (0, 1)
    assert decoded.GetExtendedData(7) == b"\x01\x01"
    assert decoded.GetExtendedData(5) is None
    assert (decoded.InvokedOperationsCount, decoded.PerformedOperationsCount) == (3, 4)
    assert decoded.user_identity == original.user_identity
    assert decoded.common_extended_negotiation == original.common_extended_negotiation
    assert decoded.GetUserInformationType(0) == 0x70
    assert encode_pdu(decoded.to_pdu()) == wire


def test_accept_round_trip_takes_abstract_syntaxes_from_the_request() -> None:
    request = rich_request()
    accept = build_accept(
        request,
        AcceptPolicy(
            supported={CT: [ELE], MR: [ELE], PATIENT_ROOT_FIND: [ILE]},
            requestor_scp_role={CT},
            async_ops_window=(2, 2),
            extended_negotiation=lambda sop_class, data: data[:1],
        ),
    )
    accept.user_identity_response = b""
    accept.AddUserInformation(0x71, b"vendor")
    wire = encode_pdu(accept.to_pdu())
    decoded = DicomAssociate.from_pdu(decode_associate(wire), request)
    assert not decoded.IsRequest
    assert [decoded.GetAbstract(id) for id in context_ids(decoded)] == [
        CT,
        CT,
        MR,
        PATIENT_ROOT_FIND,
        PATIENT_ROOT_GET,
    ]
    assert [decoded.GetResult(id) for id in context_ids(decoded)] == [
        Result.Success,
        Result.TransferSyntax,
        Result.Success,
        Result.Success,
        Result.AbstractSyntax,
    ]
    assert decoded.accepted_transfer_syntax(1) == ELE
    assert decoded.IsRoleSelect(1) and decoded.IsRoleSelect(3) and decoded.IsRoleSelect(5)
    assert decoded.GetExtendedData(7) == b"\x01"
    assert decoded.user_identity_response == b""
    assert decoded.GetUserInformationData(0) == b"vendor"
    assert (decoded.InvokedOperationsCount, decoded.PerformedOperationsCount) == (2, 2)
    assert encode_pdu(decoded.to_pdu()) == wire


def test_accept_without_its_request_has_no_abstract_syntaxes() -> None:
    request = rich_request()
    accept = build_accept(request, AcceptPolicy(supported={CT: [ELE]}, requestor_scp_role={CT}))
    decoded = DicomAssociate.from_pdu(accept.to_pdu())
    assert decoded.GetAbstract(1) == "" and decoded.accepted_transfer_syntax(1) == ELE
    # role replies cannot be placed without the request's abstract syntaxes
    assert not any(decoded.IsRoleSelect(id) for id in context_ids(decoded))


def test_from_pdu_refuses_duplicate_context_ids_and_other_pdus() -> None:
    pdu = make_request((1, CT, [ELE]), (3, MR, [ELE])).to_pdu()
    assert isinstance(pdu, AssociateRQ)
    pdu.presentation_contexts[1].context_id = 1
    with pytest.raises(PDUError):
        DicomAssociate.from_pdu(pdu)
    expect_parameter_error(DicomAssociate.from_pdu, object())
    accept_pdu = build_accept(make_request((1, CT, [ELE])), AcceptPolicy({})).to_pdu()
    expect_parameter_error(DicomAssociate.from_pdu, accept_pdu, DicomAssociate(False))


def test_from_pdu_tolerates_what_peers_send() -> None:
    request = make_request((1, CT, [ELE]))
    pdu = request.to_pdu()
    pdu.presentation_contexts[0].context_id = 2  # even, still unambiguous
    pdu.user_information.max_length = None  # a required item missing
    decoded = DicomAssociate.from_pdu(pdu)
    assert context_ids(decoded) == [2] and decoded.MaxLength == 0
    accept_pdu = build_accept(request, AcceptPolicy({CT: [ELE]})).to_pdu()
    assert isinstance(accept_pdu, AssociateAC)
    accept_pdu.presentation_contexts[0].result = 9  # undefined reason: still a rejection
    assert DicomAssociate.from_pdu(accept_pdu, request).GetResult(1) is Result.ProviderReject


FIXTURE_NAMES = [
    "dcmtk-echoscu_dcmtk-storescp",
    "dcmtk-echoscu-abort_dcmtk-storescp",
    "dcmtk-storescu_dcmtk-storescp",
    "dcmtk-storescu-deflate_dcmtk-storescp-deflate",
    "pynetdicom-rich-negotiation",
    "pynetdicom-called-ae-rejected",
]


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_recorded_negotiations_survive_the_model_unchanged(name: str) -> None:
    pdus = fixture_pdus(name)
    request_pdu = decode_associate(pdus[0][1])
    request = DicomAssociate.from_pdu(request_pdu)
    assert encode_pdu(request.to_pdu()) == encode_pdu(request_pdu)
    answer = decode_pdu(pdus[1][1])
    if isinstance(answer, AssociateAC):
        accept = DicomAssociate.from_pdu(answer, request)
        assert encode_pdu(accept.to_pdu()) == encode_pdu(answer)
        assert all(accept.GetAbstract(id) for id in context_ids(accept))


def test_rich_negotiation_fixture_reads_as_recorded() -> None:
    request, accept = recorded_negotiation("pynetdicom-rich-negotiation")
    assert (request.Calling, request.Called) == ("PYN-SCU", "PYN-SCP")
    assert context_ids(request) == [1, 3, 5]
    assert request.GetAbstract(3) == CT
    assert transfers(request, 1) == [ILE, ELE, DEFLATE, EBE]
    assert request.ImplementationVersionName == "PYNETDICOM_304"
    assert request.MaxLength == 16382
    assert request.IsAsynchronousOperations
    assert (request.InvokedOperationsCount, request.PerformedOperationsCount) == (3, 4)
    assert [id for id in context_ids(request) if request.IsRoleSelect(id)] == [3]
    assert (request.GetUserRole(3), request.GetProviderRole(3)) == (1, 1)
    assert request.GetExtendedData(5) == b"\x01\x01"
    assert request.user_identity == UserIdentityRQ(2, True, b"alice", b"s3cret")
    [common] = request.common_extended_negotiation
    assert (common.sop_class_uid, common.service_class_uid) == (CT, STORAGE_SERVICE_CLASS)
    assert common.related_general_sop_classes == [ENHANCED_CT]
    # the acceptor (pynetdicom) answered the role item and nothing else optional
    assert [accept.accepted_transfer_syntax(id) for id in context_ids(accept)] == [ILE] * 3
    assert [id for id in context_ids(accept) if accept.IsRoleSelect(id)] == [3]
    assert not accept.IsAsynchronousOperations
    assert accept.GetExtendedData(5) is None
    assert accept.user_identity_response is None
    assert negotiated_roles(request, accept, 3) == (True, True)
    assert negotiated_roles(request, accept, 1) == (True, False)


ROLE_CONTEXTS = st.lists(
    st.tuples(
        st.sampled_from([CT, MR, PATIENT_ROOT_FIND, ENHANCED_CT]),
        st.lists(st.sampled_from([ILE, ELE, EBE, DEFLATE, JPEG_BASELINE]), min_size=1, max_size=4),
    ),
    min_size=1,
    max_size=8,
)


@given(
    contexts=ROLE_CONTEXTS,
    roles=st.dictionaries(
        st.sampled_from([CT, MR, ENHANCED_CT]), st.tuples(st.booleans(), st.booleans())
    ),
    extended=st.dictionaries(st.sampled_from([CT, PATIENT_ROOT_FIND]), st.binary(max_size=6)),
    window=st.none() | st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
    max_length=st.integers(0, 0xFFFFFFFF),
)
def test_any_request_survives_encode_and_decode(
    contexts: list[tuple[str, list[str]]],
    roles: dict[str, tuple[bool, bool]],
    extended: dict[str, bytes],
    window: tuple[int, int] | None,
    max_length: int,
) -> None:
    request = make_request(*((2 * i + 1, a, ts) for i, (a, ts) in enumerate(contexts)))
    request.MaxLength = max_length
    if window is not None:
        request.SetAsynchronousOperations(True, *window)
    for id in context_ids(request):
        abstract_syntax = request.GetAbstract(id)
        if abstract_syntax in roles:
            request.SetRoleSelect(id, True, *roles[abstract_syntax])
        if abstract_syntax in extended:
            request.SetExtendedData(id, extended[abstract_syntax])
    decoded = DicomAssociate.from_pdu(decode_associate(encode_pdu(request.to_pdu())))
    assert decoded.MaxLength == max_length
    assert decoded.IsAsynchronousOperations is (window is not None)
    for id in context_ids(request):
        assert decoded.GetAbstract(id) == request.GetAbstract(id)
        assert transfers(decoded, id) == transfers(request, id)
        assert decoded.IsRoleSelect(id) is (request.GetAbstract(id) in roles)
        assert decoded.GetUserRole(id) == request.GetUserRole(id)
        assert decoded.GetProviderRole(id) == request.GetProviderRole(id)
        assert decoded.GetExtendedData(id) == request.GetExtendedData(id)


# -- build_accept -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "preference"),
    [
        # storescp's default: explicit VR local byte order, then the other, then implicit
        ("dcmtk-storescu_dcmtk-storescp", [ELE, EBE, ILE]),
        ("dcmtk-echoscu_dcmtk-storescp", [ELE, EBE, ILE]),
        # storescp +xd puts deflate first
        ("dcmtk-storescu-deflate_dcmtk-storescp-deflate", [DEFLATE, ELE, EBE, ILE]),
    ],
)
def test_build_accept_decides_as_dcmtk_storescp_did(name: str, preference: list[str]) -> None:
    request, recorded = recorded_negotiation(name)
    abstract_syntaxes = {request.GetAbstract(id) for id in context_ids(request)}
    policy = AcceptPolicy(
        supported=dict.fromkeys(abstract_syntaxes, preference), max_length=recorded.MaxLength
    )
    accept = build_accept(request, policy)
    assert context_ids(accept) == context_ids(recorded)
    for id in context_ids(recorded):
        assert accept.GetResult(id) is recorded.GetResult(id)
        assert accept.accepted_transfer_syntax(id) == recorded.accepted_transfer_syntax(id)
    assert (accept.Called, accept.Calling) == (recorded.Called, recorded.Calling)
    assert accept.ApplicationContextName == recorded.ApplicationContextName
    assert accept.MaxLength == recorded.MaxLength
    assert accept.ImplementClass == uids.IMPLEMENTATION_CLASS_UID != request.ImplementClass
    info = accept.to_pdu().user_information
    assert info.role_selections == [] and info.async_ops_window is None
    assert info.sop_class_extended == [] and info.user_identity_ac is None


def test_build_accept_answers_the_rich_fixture_like_pynetdicom_did() -> None:
    request, recorded = recorded_negotiation("pynetdicom-rich-negotiation")
    policy = AcceptPolicy(
        supported={uids.VERIFICATION: [ILE], CT: [ILE, ELE], PATIENT_ROOT_FIND: [ILE]},
        requestor_scp_role={CT},
    )
    accept = build_accept(request, policy)
    recorded_roles = recorded.to_pdu().user_information.role_selections
    assert accept.to_pdu().user_information.role_selections == recorded_roles
    for id in context_ids(request):
        assert accept.accepted_transfer_syntax(id) == recorded.accepted_transfer_syntax(id)
        assert negotiated_roles(request, accept, id) == negotiated_roles(request, recorded, id)
    # user identity is left to the application: no 59H unless it sets one
    assert accept.user_identity_response is None
    assert accept.to_pdu().user_information.user_identity_ac is None


def test_the_acceptors_preference_wins_over_the_proposal_order() -> None:
    request = make_request((1, CT, [ILE, EBE, ELE]), (3, MR, [ILE, EBE]))
    accept = build_accept(request, AcceptPolicy({CT: [ELE, ILE], MR: [ELE, EBE, ILE]}))
    assert accept.accepted_transfer_syntax(1) == ELE
    assert accept.accepted_transfer_syntax(3) == EBE


def test_unsupported_abstract_and_transfer_syntaxes_are_rejected_per_context() -> None:
    request = make_request((1, CT, [JPEG_BASELINE]), (3, MR, [ELE]), (5, CT, [ELE]))
    request.to_pdu()
    accept = build_accept(request, AcceptPolicy({CT: [ELE, ILE]}))
    assert [accept.GetResult(id) for id in (1, 3, 5)] == [
        Result.TransferSyntax,
        Result.AbstractSyntax,
        Result.Success,
    ]
    assert [accept.accepted_transfer_syntax(id) for id in (1, 3, 5)] == [None, None, ELE]
    assert [accept.GetAbstract(id) for id in (1, 3, 5)] == [CT, MR, CT]
    wire = accept.to_accept_pdu()
    assert [(c.context_id, c.result) for c in wire.presentation_contexts] == [
        (1, 4),
        (3, 3),
        (5, 0),
    ]
    assert list(negotiated_contexts(request, accept)) == [5]


def test_accept_any_transfer_syntax_falls_back_to_the_requestors_first() -> None:
    request = make_request(
        (1, CT, [JPEG_BASELINE, DEFLATE]), (3, CT, [JPEG_BASELINE, ILE]), (5, MR, [DEFLATE])
    )
    policy = AcceptPolicy({CT: [ELE, ILE]}, accept_any_transfer_syntax_for={CT, MR})
    accept = build_accept(request, policy)
    assert [accept.accepted_transfer_syntax(id) for id in (1, 3, 5)] == [
        JPEG_BASELINE,  # no preferred syntax offered: the requestor's first
        ILE,  # a preferred syntax was offered
        DEFLATE,  # listed only here: any proposal is taken
    ]


def test_a_context_with_no_transfer_syntax_is_rejected() -> None:
    pdu = make_request((1, CT, [ELE])).to_pdu()
    assert isinstance(pdu, AssociateRQ)
    pdu.presentation_contexts[0].transfer_syntaxes.clear()
    policy = AcceptPolicy({CT: [ELE]}, accept_any_transfer_syntax_for={CT})
    accept = build_accept(DicomAssociate.from_pdu(pdu), policy)
    assert accept.GetResult(1) is Result.TransferSyntax


def test_build_accept_needs_a_request() -> None:
    expect_parameter_error(build_accept, DicomAssociate(False), AcceptPolicy({}))


@pytest.mark.parametrize(
    ("proposed", "scp_allowed", "reply"),
    [
        ((1, 0), False, (1, 0)),
        ((1, 1), False, (1, 0)),  # SCP role turned down: defaults apply
        ((1, 1), True, (1, 1)),
        ((0, 1), True, (0, 1)),  # C-GET storage sub-operations
        ((0, 1), False, (0, 0)),
        ((0, 0), True, (0, 0)),  # never 1 for a role that was not proposed
    ],
)
def test_role_replies(proposed: tuple[int, int], scp_allowed: bool, reply: tuple[int, int]) -> None:
    request = make_request((1, CT, [ELE]), (3, CT, [ILE]), (5, MR, [ELE]))
    request.SetRoleSelect(1, True, *proposed)
    policy = AcceptPolicy(
        {CT: [ELE, ILE], MR: [ELE]}, requestor_scp_role={CT} if scp_allowed else ()
    )
    accept = build_accept(request, policy)
    roles = accept.to_pdu().user_information.role_selections
    assert [(r.sop_class_uid, r.scu_role, r.scp_role) for r in roles] == [(CT, *map(bool, reply))]
    assert accept.IsRoleSelect(3) and not accept.IsRoleSelect(5)
    assert (accept.GetUserRole(3), accept.GetProviderRole(3)) == reply


def test_scu_role_is_turned_down_for_unsupported_sop_classes() -> None:
    request = make_request((1, CT, [ELE]))
    request.SetRoleSelect(1, True, 1, 1)
    accept = build_accept(request, AcceptPolicy({}, requestor_scp_role={CT}))
    assert (accept.GetUserRole(1), accept.GetProviderRole(1)) == (0, 1)


def test_no_role_items_in_means_none_out() -> None:
    request = make_request((1, CT, [ELE]), (3, MR, [ELE]))
    accept = build_accept(
        request, AcceptPolicy({CT: [ELE], MR: [ELE]}, requestor_scp_role={CT, MR})
    )
    assert not any(accept.IsRoleSelect(id) for id in (1, 3))
    assert accept.to_pdu().user_information.role_selections == []


def role_outcome(proposed: tuple[int, int] | None, reply: tuple[int, int] | None) -> tuple:
    request, accept = make_request((1, CT, [ELE])), DicomAssociate(False)
    accept.AddPresentationContext(1, Result.Success, CT)
    accept.AddTransfer(1, ELE)
    if proposed is not None:
        request.SetRoleSelect(1, True, *proposed)
    if reply is not None:
        accept.SetRoleSelect(1, True, *reply)
    roles = negotiated_roles(request, accept, 1)
    context = negotiated_contexts(request, accept)[1]
    assert (context.requestor_is_scu, context.requestor_is_scp) == roles
    assert context.usable is any(roles)
    return roles


@pytest.mark.parametrize(
    ("proposed", "reply", "outcome"),
    [
        # standard-tables.md 4.4: (requestor may be SCU, requestor may be SCP)
        ((1, 1), (1, 1), (True, True)),
        ((1, 1), (0, 1), (False, True)),
        ((1, 1), (1, 0), (True, False)),
        ((0, 1), (0, 1), (False, True)),
        ((1, 0), (1, 0), (True, False)),
        ((1, 1), (0, 0), (False, False)),
        ((0, 1), (0, 0), (False, False)),
        ((1, 1), None, (True, False)),  # reply not returned: defaults
        (None, None, (True, False)),  # nothing proposed: defaults
        ((1, 0), (1, 1), (True, False)),  # an unproposed role is ignored even if granted
        (None, (1, 1), (True, False)),
    ],
)
def test_negotiated_roles(proposed, reply, outcome) -> None:
    assert role_outcome(proposed, reply) == outcome


@pytest.mark.parametrize(
    ("requested", "allowed", "answer"),
    [
        ((3, 4), (2, 8), (2, 4)),
        ((3, 4), (3, 4), (3, 4)),
        ((0, 0), (5, 0), (5, 0)),  # requestor unlimited: the acceptor's own values
        ((3, 0), (0, 6), (3, 6)),  # acceptor unlimited: the requestor's values
        ((0, 2), (0, 0), (0, 2)),
        ((3, 4), None, (1, 1)),  # no async support: synchronous
    ],
)
def test_async_window_answer(requested, allowed, answer) -> None:
    request = make_request((1, CT, [ELE]))
    request.SetAsynchronousOperations(True, *requested)
    accept = build_accept(request, AcceptPolicy({CT: [ELE]}, async_ops_window=allowed))
    assert accept.IsAsynchronousOperations
    assert accept.to_pdu().user_information.async_ops_window == answer


@given(
    requested=st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
    allowed=st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
)
def test_async_window_answer_never_exceeds_a_limited_request(requested, allowed) -> None:
    request = make_request((1, CT, [ELE]))
    request.SetAsynchronousOperations(True, *requested)
    accept = build_accept(request, AcceptPolicy({CT: [ELE]}, async_ops_window=allowed))
    answer = (accept.InvokedOperationsCount, accept.PerformedOperationsCount)
    for asked, allowed_value, given_value in zip(requested, allowed, answer, strict=True):
        if asked:
            assert given_value != 0 and given_value <= asked
        if allowed_value:
            assert given_value != 0 and given_value <= allowed_value


def test_async_window_absent_in_request_is_absent_in_accept() -> None:
    request = make_request((1, CT, [ELE]))
    accept = build_accept(request, AcceptPolicy({CT: [ELE]}, async_ops_window=(0, 0)))
    assert not accept.IsAsynchronousOperations
    assert accept.to_pdu().user_information.async_ops_window is None


def test_extended_negotiation_goes_through_the_callback() -> None:
    request = make_request(
        (1, PATIENT_ROOT_FIND, [ELE]),
        (3, PATIENT_ROOT_FIND, [ILE]),
        (5, PATIENT_ROOT_GET, [ELE]),
        (7, CT, [ELE]),
    )
    request.SetExtendedData(1, b"\x01\x01\x01")
    request.SetExtendedData(5, b"\x01")
    calls: list[tuple[str, bytes]] = []

    def relational_only(sop_class: str, data: bytes) -> bytes | None:
        calls.append((sop_class, data))
        return data[:1] if sop_class == PATIENT_ROOT_FIND else None

    supported = {PATIENT_ROOT_FIND: [ELE, ILE], PATIENT_ROOT_GET: [ELE], CT: [ELE]}
    accept = build_accept(request, AcceptPolicy(supported, extended_negotiation=relational_only))
    assert calls == [(PATIENT_ROOT_FIND, b"\x01\x01\x01"), (PATIENT_ROOT_GET, b"\x01")]
    assert accept.GetExtendedData(1) == accept.GetExtendedData(3) == b"\x01"
    assert accept.GetExtendedData(5) is None and accept.GetExtendedData(7) is None
    [item] = accept.to_pdu().user_information.sop_class_extended
    assert (item.sop_class_uid, item.application_info) == (PATIENT_ROOT_FIND, b"\x01")
    without_callback = build_accept(request, AcceptPolicy(supported))
    assert without_callback.to_pdu().user_information.sop_class_extended == []


def test_an_oversized_extended_negotiation_reply_is_refused() -> None:
    request = make_request((1, PATIENT_ROOT_FIND, [ELE]))
    request.SetExtendedData(1, b"\x01")
    policy = AcceptPolicy(
        {PATIENT_ROOT_FIND: [ELE]}, extended_negotiation=lambda s, d: b"\0" * 70000
    )
    expect_parameter_error(build_accept, request, policy)


def test_the_accept_leaves_request_only_items_out() -> None:
    request = rich_request()
    accept = build_accept(request, AcceptPolicy({CT: [ELE]}))
    info = accept.to_pdu().user_information
    assert info.sop_class_common_extended == [] and info.user_identity_rq is None
    assert info.unknown == [] and info.user_identity_ac is None
    assert accept.MaxLength == DEFAULT_MAX_LENGTH
    assert accept.ImplementationVersionName == uids.IMPLEMENTATION_VERSION_NAME
