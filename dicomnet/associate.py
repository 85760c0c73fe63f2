"""Association negotiation: the LEADTOOLS ``DicomAssociate`` builder and the acceptor's rules.

``DicomAssociate`` holds the contents of an A-ASSOCIATE-RQ or A-ASSOCIATE-AC with the
LEADTOOLS member names (PS3.8 7.1.1, 9.3.2-9.3.3; PS3.7 annex D.3.3) and converts to and from
the PDU model of ``dicomnet.pdu``. ``build_accept`` is the acceptor's side of the
negotiation as a pure function (PS3.8 7.1.1.13-14, PS3.7 D.3.3.3-D.3.3.5);
``negotiated_roles`` and ``negotiated_contexts`` read the outcome (PS3.7 D.3.3.4).

Two shapes differ from the wire and are mapped here:

- LEADTOOLS keys role selection and SOP class extended negotiation by presentation context
  ID; the wire carries one 54H/56H sub-item per SOP class. Encoding merges the contexts
  that share an abstract syntax (different settings for one SOP class are an error; a
  context that leaves it unset shares the others'); decoding applies an item to every
  context with that abstract syntax. Items naming a SOP class without a context carry no
  usable meaning and are dropped.
- An A-ASSOCIATE-AC carries no abstract syntax; ``from_pdu`` takes it from the
  association's own request, so pass that request when decoding an accept.

User identity (58H/59H, PS3.7 D.3.3.7) has typed helpers (``set_username``,
``set_kerberos_ticket``, ``set_saml_assertion``, ``set_jwt``, taking
``dicomnet.identity`` values); whether the requestor insists on a positive response is
local policy kept beside the request (``require_user_identity_response``), not sent.

No I/O happens here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from . import uids
from .enums import DicomAssociateAcceptResultType, DicomRoleSupport
from .errors import DicomException, DicomExceptionCode, PDUError
from .identity import UserIdentity
from .pdu import (
    AssociateAC,
    AssociateRQ,
    PresentationContextAC,
    PresentationContextRQ,
    RoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UnknownSubItem,
    UserIdentityAC,
    UserIdentityRQ,
    UserInformation,
)

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "AcceptPolicy",
    "DicomAssociate",
    "NegotiatedContext",
    "build_accept",
    "negotiated_contexts",
    "negotiated_roles",
]

# The largest P-DATA-TF variable field we ask peers to send us. 128 KiB: per-PDU work is
# the receive budget (roughly twice the throughput of 16 KiB PDUs on this design's
# loop), and it is the ceiling DCMTK itself allows for its own PDUs, so deployed peers
# are known to handle it. LEADTOOLS demos use 46726; DCMTK and pynetdicom default to ~16 KiB.
DEFAULT_MAX_LENGTH = 131072

MAX_PRESENTATION_CONTEXTS = 128  # odd IDs 1..255 (PS3.8 9.3.2.2)
MAX_OPERATIONS_WINDOW = 0xFFFF  # the 53H item's counts are 16-bit (PS3.7 D.3.3.3)
_MAX_ITEM_LENGTH = 0xFFFF  # sub-item lengths are 16-bit (PS3.8 9.3.2.3)
# 56H holds a 2-byte UID length and the UID before the application information.
_MAX_EXTENDED_DATA_LENGTH = _MAX_ITEM_LENGTH - 2 - uids.MAX_UID_LENGTH
_USER_IDENTITY_TYPES = range(1, 6)  # PS3.7 D.3.3.7.1: 1..5 defined, others reserved
_USERNAME_AND_PASSCODE = 2
_USER_IDENTITY_OVERHEAD = 6  # type, positive-response flag, two 2-byte field lengths
# Sub-item types with a typed representation here; the raw API holds the others.
_TYPED_SUB_ITEMS = range(0x51, 0x5A)

_T = TypeVar("_T")


def _parameter_error(message: str) -> DicomException:
    return DicomException(DicomExceptionCode.Parameter, message)


def _check_uid(uid: str, what: str) -> str:
    if not isinstance(uid, str) or not uids.is_valid_uid(uid):
        raise _parameter_error(
            f"{what} {uid!r} is not a valid UID (PS3.8 annex F: digits and dots, "
            f"no leading zeros in a component, at most {uids.MAX_UID_LENGTH} characters)"
        )
    return uid


def _check_range(value: int, what: str, low: int, high: int) -> int:
    if not isinstance(value, int) or not low <= value <= high:
        raise _parameter_error(f"{what} must be an integer from {low} to {high}, not {value!r}")
    return value


def _check_bytes(data: bytes, what: str, max_length: int) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise _parameter_error(f"{what} must be bytes, not {type(data).__name__}")
    if len(data) > max_length:
        raise _parameter_error(f"{what} is {len(data)} bytes; at most {max_length} fit the item")
    return bytes(data)


def _as_result(result: int) -> DicomAssociateAcceptResultType:
    try:
        return DicomAssociateAcceptResultType(result)
    except ValueError:
        raise _parameter_error(
            f"presentation context result {result!r} is not one of 0..4 (PS3.8 9.3.3.2)"
        ) from None


def _as_role(role: int) -> bool:
    try:
        return DicomRoleSupport(role) is DicomRoleSupport.Supported
    except ValueError:
        raise _parameter_error(f"role support {role!r} must be 0 or 1") from None


def _result_from_wire(value: int) -> DicomAssociateAcceptResultType:
    # Tolerant reading: an undefined reason from a peer is still a rejection.
    try:
        return DicomAssociateAcceptResultType(value)
    except ValueError:
        return DicomAssociateAcceptResultType.ProviderReject


def _checked_user_identity(identity: UserIdentityRQ) -> UserIdentityRQ:
    if identity.identity_type not in _USER_IDENTITY_TYPES:
        raise _parameter_error(
            f"user identity type {identity.identity_type!r} is not one of 1..5 (PS3.7 D.3.3.7.1)"
        )
    if not identity.primary_field:
        raise _parameter_error("the user identity primary field must not be empty")
    room = _MAX_ITEM_LENGTH - _USER_IDENTITY_OVERHEAD
    primary = _check_bytes(identity.primary_field, "user identity primary field", room)
    room -= len(primary)
    _check_bytes(identity.secondary_field, "user identity secondary field", room)
    if identity.secondary_field and identity.identity_type != _USERNAME_AND_PASSCODE:
        raise _parameter_error(
            "only user identity type 2 (username and passcode) has a secondary field "
            "(PS3.7 D.3.3.7.1)"
        )
    return identity


def _utf8(value: bytes | str) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _the_request(associate: DicomAssociate, what: str) -> DicomAssociate:
    """``associate`` if it is a request, else the request ``Reset(False)`` made it from."""
    if associate.IsRequest:
        return associate
    if associate._answered_request is not None:
        return associate._answered_request
    raise _parameter_error(f"{what} must be the association's request")


@dataclass
class _Context:
    """One presentation context as LEADTOOLS sees it (abstract syntax kept in an AC too)."""

    context_id: int
    result: DicomAssociateAcceptResultType
    abstract_syntax: str
    transfer_syntaxes: list[str] = field(default_factory=list)
    role_select: bool = False
    scu_role: bool = False
    scp_role: bool = False
    extended_data: bytes | None = None

    def role(self) -> tuple[bool, bool] | None:
        return (self.scu_role, self.scp_role) if self.role_select else None


class DicomAssociate:
    """Contents of an A-ASSOCIATE-RQ (``request=True``) or A-ASSOCIATE-AC (``False``).

    LEADTOOLS member names; presentation context IDs are the keys of the per-context
    members. A new object holds the defaults of ``Default()``. ``MaxLength`` 0 means
    "no maximum". ``ImplementationVersionName`` "" omits the optional 55H sub-item.
    Invalid values raise ``DicomException`` with ``Code`` ``Parameter``.
    """

    Version: int
    Called: str
    Calling: str
    ApplicationContextName: str
    ImplementClass: str
    ImplementationVersionName: str
    MaxLength: int

    def __init__(self, request: bool = True) -> None:
        self.Reset(request)

    # LEADTOOLS code holds a DicomAssociate in `using`; there is nothing to release.
    def __enter__(self) -> DicomAssociate:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def __repr__(self) -> str:
        kind = "RQ" if self._request else "AC"
        return (
            f"<DicomAssociate {kind} {self.Calling!r}->{self.Called!r} "
            f"contexts={len(self._contexts)} MaxLength={self.MaxLength}>"
        )

    # -- whole association ----------------------------------------------------------

    @property
    def IsRequest(self) -> bool:
        return self._request

    def Default(self) -> None:
        """Set protocol version 1, the DICOM application context, dicomnet's implementation
        identification, ``DEFAULT_MAX_LENGTH`` and no asynchronous operations."""
        self.Version = 1
        self.ApplicationContextName = uids.APPLICATION_CONTEXT
        self.ImplementClass = uids.IMPLEMENTATION_CLASS_UID
        self.ImplementationVersionName = uids.IMPLEMENTATION_VERSION_NAME
        self.MaxLength = DEFAULT_MAX_LENGTH
        self.SetAsynchronousOperations(False, 1, 1)

    def Reset(self, request: bool) -> None:
        """Clear everything (AE titles, contexts, user information) and apply ``Default()``.

        ``Reset(False)`` on a request instead turns it into the skeleton of its accept:
        AE titles, application context and every proposed context ID with its abstract
        syntax stay; each context starts rejected (``ProviderReject``, no transfer
        syntax) until the SCP calls ``SetResult`` and ``AddTransfer`` for it. The request
        as it stood is kept inside, so wherever the association's request is needed
        (``from_pdu``, ``negotiated_roles``, ``negotiated_contexts``, ``build_accept``,
        and so ``DicomNet.SendAssociateAccept``) the reset object still stands for it.
        """
        answered = copy.deepcopy(self) if getattr(self, "_request", False) and not request else None
        self._request = bool(request)
        self.Called = ""
        self.Calling = ""
        self._contexts: list[_Context] = []
        self._common_extended: list[SOPClassCommonExtendedNegotiation] = []
        self._user_identity: UserIdentityRQ | None = None
        self._identity_response_required = False
        self._user_identity_response: bytes | None = None
        self._raw_user_information: list[UnknownSubItem] = []
        self._answered_request: DicomAssociate | None = answered
        self.Default()
        if answered is not None:
            self.Called, self.Calling = answered.Called, answered.Calling
            self.ApplicationContextName = answered.ApplicationContextName
            self._contexts = [
                _Context(
                    c.context_id, DicomAssociateAcceptResultType.ProviderReject, c.abstract_syntax
                )
                for c in answered._contexts
            ]

    # -- asynchronous operations window (53H) ---------------------------------------

    @property
    def IsAsynchronousOperations(self) -> bool:
        return self._async_enabled

    @property
    def InvokedOperationsCount(self) -> int:
        return self._async_invoked

    @property
    def PerformedOperationsCount(self) -> int:
        return self._async_performed

    def SetAsynchronousOperations(self, enabled: bool, invoked: int, performed: int) -> None:
        """Window of outstanding operations (0 = unlimited, 1 = synchronous). The 53H item
        is only sent when ``enabled``: some devices drop the connection on seeing it."""
        self._async_invoked = _check_range(
            invoked, "invoked operations count", 0, MAX_OPERATIONS_WINDOW
        )
        self._async_performed = _check_range(
            performed, "performed operations count", 0, MAX_OPERATIONS_WINDOW
        )
        self._async_enabled = bool(enabled)

    # -- presentation contexts ------------------------------------------------------

    @property
    def PresentationContextCount(self) -> int:
        return len(self._contexts)

    def GetPresentationContextID(self, index: int) -> int:
        return self._context_at(index).context_id

    def SetPresentationContextID(self, index: int, id: int) -> None:
        context = self._context_at(index)
        if id != context.context_id:
            self._check_new_context_id(id)
        context.context_id = id

    def AddPresentationContext(self, id: int, result: int, abstract_syntax: str) -> None:
        """Add a context; a requestor passes result 0 (``Success``)."""
        self._check_new_context_id(id)
        if len(self._contexts) >= MAX_PRESENTATION_CONTEXTS:
            raise _parameter_error(
                f"an association has at most {MAX_PRESENTATION_CONTEXTS} presentation contexts"
            )
        context = _Context(id, _as_result(result), _check_uid(abstract_syntax, "abstract syntax"))
        self._contexts.append(context)

    def DeletePresentation(self, id: int) -> None:
        self._contexts.remove(self._context(id))

    def GetAbstract(self, id: int) -> str:
        return self._context(id).abstract_syntax

    def SetAbstract(self, id: int, abstract_syntax: str) -> None:
        self._context(id).abstract_syntax = _check_uid(abstract_syntax, "abstract syntax")

    def GetResult(self, id: int) -> DicomAssociateAcceptResultType:
        return self._context(id).result

    def SetResult(self, id: int, result: int) -> None:
        self._context(id).result = _as_result(result)

    def FindAbstract(self, abstract_syntax: str) -> int:
        """ID of the first context with this abstract syntax, 0 if there is none."""
        return self._find_abstract_from(0, abstract_syntax)

    def FindNextAbstract(self, id: int, abstract_syntax: str) -> int:
        """ID of the next context after ``id`` with this abstract syntax, 0 if there is none."""
        return self._find_abstract_from(self._index_of(id) + 1, abstract_syntax)

    def GetTransferCount(self, id: int) -> int:
        return len(self._context(id).transfer_syntaxes)

    def GetTransfer(self, id: int, index: int) -> str:
        transfers = self._context(id).transfer_syntaxes
        return transfers[self._check_index(index, len(transfers), f"transfer syntax of {id}")]

    def AddTransfer(self, id: int, transfer_syntax: str) -> None:
        context = self._context(id)
        if not self._request and context.transfer_syntaxes:
            raise _parameter_error(
                f"context {id} of an A-ASSOCIATE-AC already has its one transfer syntax"
            )
        context.transfer_syntaxes.append(_check_uid(transfer_syntax, "transfer syntax"))

    def SetTransfer(self, id: int, index: int, transfer_syntax: str) -> None:
        transfers = self._context(id).transfer_syntaxes
        position = self._check_index(index, len(transfers), f"transfer syntax of {id}")
        transfers[position] = _check_uid(transfer_syntax, "transfer syntax")

    def DeleteTransfer(self, id: int, index: int) -> None:
        transfers = self._context(id).transfer_syntaxes
        del transfers[self._check_index(index, len(transfers), f"transfer syntax of {id}")]

    def accepted_transfer_syntax(self, id: int) -> str | None:
        """For an accept: the transfer syntax of context ``id`` if it was accepted, else None."""
        if self._request:
            raise _parameter_error("only an A-ASSOCIATE-AC says which transfer syntax was accepted")
        context = self._context(id)
        accepted = context.result is DicomAssociateAcceptResultType.Success
        return context.transfer_syntaxes[0] if accepted and context.transfer_syntaxes else None

    # -- SCP/SCU role selection (54H), keyed by context as in LEADTOOLS -------------

    def IsRoleSelect(self, id: int) -> bool:
        return self._context(id).role_select

    def GetUserRole(self, id: int) -> DicomRoleSupport:
        """The SCU-role value (requestor as SCU proposed, or accepted in an AC)."""
        return DicomRoleSupport(self._context(id).scu_role)

    def GetProviderRole(self, id: int) -> DicomRoleSupport:
        """The SCP-role value (requestor as SCP proposed, or accepted in an AC)."""
        return DicomRoleSupport(self._context(id).scp_role)

    def SetRoleSelect(self, id: int, enabled: bool, user_role: int, provider_role: int) -> None:
        context = self._context(id)
        context.scu_role, context.scp_role = _as_role(user_role), _as_role(provider_role)
        context.role_select = bool(enabled)

    # -- SOP class extended negotiation (56H), keyed by context ---------------------

    def SetExtendedData(self, id: int, data: bytes | None) -> None:
        """Service-class application information for the context's SOP class; None removes it."""
        context = self._context(id)
        context.extended_data = (
            None
            if data is None
            else _check_bytes(data, "extended negotiation data", _MAX_EXTENDED_DATA_LENGTH)
        )

    def GetExtendedData(self, id: int) -> bytes | None:
        return self._context(id).extended_data

    def GetExtendedDataLength(self, id: int) -> int:
        return len(self._context(id).extended_data or b"")

    # -- SOP class common extended negotiation (57H, request only) ------------------

    def add_common_extended_negotiation(
        self, sop_class_uid: str, service_class_uid: str, related: Sequence[str] = ()
    ) -> None:
        """Declare the service class (and related general SOP classes) of a SOP class."""
        if not self._request:
            raise _parameter_error(
                "SOP class common extended negotiation is sent in the request only (PS3.7 D.3.3.6)"
            )
        _check_uid(sop_class_uid, "SOP class")
        if any(item.sop_class_uid == sop_class_uid for item in self._common_extended):
            raise _parameter_error(
                f"SOP class {sop_class_uid} already has common extended negotiation"
            )
        item = SOPClassCommonExtendedNegotiation(
            sop_class_uid,
            _check_uid(service_class_uid, "service class"),
            [_check_uid(uid, "related general SOP class") for uid in related],
        )
        self._common_extended.append(item)

    @property
    def common_extended_negotiation(self) -> tuple[SOPClassCommonExtendedNegotiation, ...]:
        return tuple(
            replace(item, related_general_sop_classes=list(item.related_general_sop_classes))
            for item in self._common_extended
        )

    # -- raw user information sub-items (types without a typed member) --------------

    @property
    def UserInformationCount(self) -> int:
        return len(self._raw_user_information)

    def GetUserInformationType(self, index: int) -> int:
        return self._raw_item(index).item_type

    def GetUserInformationData(self, index: int) -> bytes:
        return self._raw_item(index).data

    def GetUserInformationDataLength(self, index: int) -> int:
        return len(self._raw_item(index).data)

    def AddUserInformation(self, type: int, data: bytes) -> None:
        self._raw_user_information.append(self._checked_raw_item(type, data))

    def SetUserInformation(self, index: int, type: int, data: bytes) -> None:
        position = self._check_index(index, self.UserInformationCount, "user information item")
        self._raw_user_information[position] = self._checked_raw_item(type, data)

    def DeleteUserInformation(self, index: int) -> None:
        del self._raw_user_information[
            self._check_index(index, self.UserInformationCount, "user information item")
        ]

    # -- user identity (58H/59H) ----------------------------------------------------

    def set_user_identity(
        self,
        identity_type: int,
        primary: bytes | str,
        secondary: bytes | str = b"",
        positive_response_requested: bool = False,
    ) -> None:
        """Propose a user identity; str fields are encoded as UTF-8 (PS3.7 D.3.3.7.1)."""
        self.user_identity = UserIdentityRQ(
            identity_type, bool(positive_response_requested), _utf8(primary), _utf8(secondary)
        )

    def set_username(
        self,
        username: str,
        passcode: str | bytes | None = None,
        *,
        positive_response_requested: bool = False,
        require_positive_response: bool = False,
    ) -> None:
        """Propose a username (type 1), or a username and passcode (type 2).

        ``require_positive_response`` asks for a positive response and, when the accept
        carries none, aborts the association: ``wait_associated`` raises
        ``UserIdentityNotConfirmed``. The same two flags work alike in
        ``set_kerberos_ticket``, ``set_saml_assertion`` and ``set_jwt``.
        """
        identity = (
            UserIdentity.username(username)
            if passcode is None
            else UserIdentity.username_and_passcode(username, passcode)
        )
        self.propose_user_identity(identity, positive_response_requested, require_positive_response)

    def set_kerberos_ticket(
        self,
        ticket: bytes,
        *,
        positive_response_requested: bool = False,
        require_positive_response: bool = False,
    ) -> None:
        """Propose a Kerberos service ticket (type 3); the response is the server ticket."""
        self.propose_user_identity(
            UserIdentity.kerberos(ticket), positive_response_requested, require_positive_response
        )

    def set_saml_assertion(
        self,
        assertion: bytes | str,
        *,
        positive_response_requested: bool = False,
        require_positive_response: bool = False,
    ) -> None:
        """Propose a SAML assertion (type 4); the response is the SAML response."""
        self.propose_user_identity(
            UserIdentity.saml(assertion), positive_response_requested, require_positive_response
        )

    def set_jwt(
        self,
        token: bytes | str,
        *,
        positive_response_requested: bool = False,
        require_positive_response: bool = False,
    ) -> None:
        """Propose a JSON Web Token (type 5)."""
        self.propose_user_identity(
            UserIdentity.jwt(token), positive_response_requested, require_positive_response
        )

    def propose_user_identity(
        self,
        identity: UserIdentity,
        positive_response_requested: bool = False,
        require_positive_response: bool = False,
    ) -> None:
        """Propose ``identity``; a required positive response is also requested."""
        wanted = positive_response_requested or require_positive_response
        self.user_identity = replace(identity, positive_response_requested=wanted).to_item()
        self._identity_response_required = bool(require_positive_response)

    @property
    def requested_identity(self) -> UserIdentity | None:
        """The proposed user identity in its typed form (passcodes hidden from ``repr``)."""
        item = self._user_identity
        return None if item is None else UserIdentity.from_item(item)

    @property
    def require_user_identity_response(self) -> bool:
        """The requestor aborts an accept without a user identity response (local
        policy, not sent: the request only carries "positive response requested")."""
        return self._identity_response_required and self._user_identity is not None

    @property
    def user_identity(self) -> UserIdentityRQ | None:
        return self._user_identity

    @user_identity.setter
    def user_identity(self, identity: UserIdentityRQ | None) -> None:
        if identity is not None and not self._request:
            raise _parameter_error("a user identity is proposed in the request only")
        self._user_identity = None if identity is None else _checked_user_identity(identity)
        self._identity_response_required = False

    @property
    def user_identity_response(self) -> bytes | None:
        """The acceptor's 59H server response; None sends no 59H (b"" sends an empty one)."""
        return self._user_identity_response

    @user_identity_response.setter
    def user_identity_response(self, response: bytes | None) -> None:
        if response is not None and self._request:
            raise _parameter_error("a user identity response belongs in the A-ASSOCIATE-AC")
        self._user_identity_response = (
            None
            if response is None
            else _check_bytes(response, "user identity server response", _MAX_ITEM_LENGTH - 2)
        )

    # -- conversion to and from the PDU model ---------------------------------------

    def to_pdu(self) -> AssociateRQ | AssociateAC:
        """The PDU to send; checks everything the builder could not check value by value."""
        return self.to_request_pdu() if self._request else self.to_accept_pdu()

    def to_request_pdu(self) -> AssociateRQ:
        """``to_pdu`` for code that needs a request (a DicomAssociate(False) is refused)."""
        if not self._request:
            raise _parameter_error("this DicomAssociate holds an A-ASSOCIATE-AC, not a request")
        self._check_association_fields()
        return AssociateRQ(
            called_ae=self.Called,
            calling_ae=self.Calling,
            presentation_contexts=self._rq_contexts(),
            user_information=self._user_information(),
            application_context=self.ApplicationContextName,
            protocol_version=self.Version,
        )

    def to_accept_pdu(self) -> AssociateAC:
        """``to_pdu`` for code that needs an accept (a DicomAssociate(True) is refused)."""
        if self._request:
            raise _parameter_error("this DicomAssociate holds an A-ASSOCIATE-RQ, not an accept")
        self._check_association_fields()
        return AssociateAC(
            called_ae=self.Called,
            calling_ae=self.Calling,
            presentation_contexts=self._ac_contexts(),
            user_information=self._user_information(),
            application_context=self.ApplicationContextName,
            protocol_version=self.Version,
        )

    @classmethod
    def from_pdu(
        cls, pdu: AssociateRQ | AssociateAC, request: DicomAssociate | None = None
    ) -> DicomAssociate:
        """Read a received (or built) RQ or AC. For an AC, ``request`` is the association's
        own request (or the accept ``Reset(False)`` made of it): it supplies each context's
        abstract syntax, which the AC does not carry, and without it role and extended
        negotiation replies cannot be placed."""
        if not isinstance(pdu, AssociateRQ | AssociateAC):
            raise _parameter_error(f"cannot read association contents from {type(pdu).__name__}")
        if request is not None:
            request = _the_request(request, "from_pdu(request=...)")
        associate = cls(isinstance(pdu, AssociateRQ))
        associate.Version = pdu.protocol_version
        associate.Called = pdu.called_ae
        associate.Calling = pdu.calling_ae
        associate.ApplicationContextName = pdu.application_context
        if isinstance(pdu, AssociateRQ):
            for rq_context in pdu.presentation_contexts:
                associate._append_decoded(_rq_context_from_wire(rq_context))
        else:
            for ac_context in pdu.presentation_contexts:
                associate._append_decoded(_ac_context_from_wire(ac_context, request))
        associate._read_user_information(pdu.user_information)
        return associate

    # -- internals ------------------------------------------------------------------

    def _context_at(self, index: int) -> _Context:
        return self._contexts[self._check_index(index, len(self._contexts), "presentation context")]

    def _index_of(self, id: int) -> int:
        for index, context in enumerate(self._contexts):
            if context.context_id == id:
                return index
        raise _parameter_error(f"no presentation context with ID {id!r}")

    def _context(self, id: int) -> _Context:
        return self._contexts[self._index_of(id)]

    def _has_context(self, id: int) -> bool:
        return any(context.context_id == id for context in self._contexts)

    def _contexts_with(self, abstract_syntax: str) -> list[_Context]:
        return [c for c in self._contexts if c.abstract_syntax == abstract_syntax]

    def _find_abstract_from(self, start: int, abstract_syntax: str) -> int:
        for context in self._contexts[start:]:
            if context.abstract_syntax == abstract_syntax:
                return context.context_id
        return 0

    @staticmethod
    def _check_index(index: int, count: int, what: str) -> int:
        if not isinstance(index, int) or not 0 <= index < count:
            raise _parameter_error(f"{what} index {index!r} is out of range (count {count})")
        return index

    def _check_new_context_id(self, id: int) -> None:
        if not isinstance(id, int) or not 1 <= id <= 255 or id % 2 == 0:
            raise _parameter_error(
                f"presentation context ID {id!r} must be an odd number from 1 to 255"
            )
        if self._has_context(id):
            raise _parameter_error(f"presentation context ID {id} is already in use")

    def _append_decoded(self, context: _Context) -> None:
        # A peer's IDs are taken as they come (tolerance), but a duplicate is ambiguous.
        if self._has_context(context.context_id):
            raise PDUError(
                f"presentation context ID {context.context_id} appears twice",
                DicomExceptionCode.Parameter,
            )
        self._contexts.append(context)

    def _raw_item(self, index: int) -> UnknownSubItem:
        position = self._check_index(index, self.UserInformationCount, "user information item")
        return self._raw_user_information[position]

    @staticmethod
    def _checked_raw_item(item_type: int, data: bytes) -> UnknownSubItem:
        _check_range(item_type, "user information item type", 0, 0xFF)
        if item_type in _TYPED_SUB_ITEMS:
            raise _parameter_error(
                f"user information item type {item_type:02X}H has its own members "
                "(MaxLength, ImplementClass, SetAsynchronousOperations, SetRoleSelect, "
                "SetExtendedData, add_common_extended_negotiation, set_user_identity)"
            )
        return UnknownSubItem(item_type, _check_bytes(data, "user information data", 0xFFFF))

    def _per_sop_class(self, value_of: Callable[[_Context], _T | None], what: str) -> dict[str, _T]:
        """Merge a per-context setting into the one-per-SOP-class form of the wire."""
        merged: dict[str, _T] = {}
        for context in self._contexts:
            value = value_of(context)
            if value is None:
                continue
            if not context.abstract_syntax:
                raise _parameter_error(
                    f"context {context.context_id} has {what} but no abstract syntax to name"
                )
            if merged.setdefault(context.abstract_syntax, value) != value:
                raise _parameter_error(
                    f"contexts with abstract syntax {context.abstract_syntax} have different "
                    f"{what}; the wire carries one per SOP class"
                )
        return merged

    def _roles_by_sop_class(self) -> dict[str, tuple[bool, bool]]:
        return self._per_sop_class(_Context.role, "role selections")

    def _extended_by_sop_class(self) -> dict[str, bytes]:
        return self._per_sop_class(lambda c: c.extended_data, "extended negotiation data")

    def _check_association_fields(self) -> None:
        # AE titles and the version name are checked by the codec when encoding.
        _check_range(self.Version, "protocol version", 0, 0xFFFF)
        _check_range(self.MaxLength, "MaxLength", 0, 0xFFFFFFFF)
        _check_uid(self.ApplicationContextName, "application context name")
        _check_uid(self.ImplementClass, "implementation class UID")
        if self._request and not self._contexts:
            raise _parameter_error("a request needs at least one presentation context")

    def _rq_contexts(self) -> list[PresentationContextRQ]:
        for context in self._contexts:
            if not context.transfer_syntaxes:
                raise _parameter_error(
                    f"context {context.context_id} proposes no transfer syntax (AddTransfer)"
                )
        return [
            PresentationContextRQ(c.context_id, c.abstract_syntax, list(c.transfer_syntaxes))
            for c in self._contexts
        ]

    def _ac_contexts(self) -> list[PresentationContextAC]:
        for context in self._contexts:
            accepted = context.result is DicomAssociateAcceptResultType.Success
            if accepted and not context.transfer_syntaxes:
                raise _parameter_error(
                    f"accepted context {context.context_id} needs its transfer syntax (AddTransfer)"
                )
        return [
            PresentationContextAC(
                c.context_id, int(c.result), c.transfer_syntaxes[0] if c.transfer_syntaxes else ""
            )
            for c in self._contexts
        ]

    def _user_information(self) -> UserInformation:
        window = (self._async_invoked, self._async_performed) if self._async_enabled else None
        response = self._user_identity_response
        return UserInformation(
            max_length=self.MaxLength,
            implementation_class_uid=self.ImplementClass,
            async_ops_window=window,
            role_selections=[
                RoleSelection(uid, scu, scp)
                for uid, (scu, scp) in self._roles_by_sop_class().items()
            ],
            implementation_version_name=self.ImplementationVersionName or None,
            sop_class_extended=[
                SOPClassExtendedNegotiation(uid, data)
                for uid, data in self._extended_by_sop_class().items()
            ],
            sop_class_common_extended=list(self.common_extended_negotiation),
            user_identity_rq=None if self._user_identity is None else replace(self._user_identity),
            user_identity_ac=None if response is None else UserIdentityAC(response),
            unknown=[replace(item) for item in self._raw_user_information],
        )

    def _read_user_information(self, info: UserInformation) -> None:
        # Absent 51H is a peer's protocol error; read it as "no maximum stated".
        self.MaxLength = info.max_length or 0
        self.ImplementClass = info.implementation_class_uid
        self.ImplementationVersionName = info.implementation_version_name or ""
        if info.async_ops_window is not None:
            self.SetAsynchronousOperations(True, *info.async_ops_window)
        for role in info.role_selections:
            for context in self._contexts_with(role.sop_class_uid):
                context.role_select = True
                context.scu_role, context.scp_role = bool(role.scu_role), bool(role.scp_role)
        for extended in info.sop_class_extended:
            for context in self._contexts_with(extended.sop_class_uid):
                context.extended_data = bytes(extended.application_info)
        if self._request:
            self._common_extended = [
                replace(item, related_general_sop_classes=list(item.related_general_sop_classes))
                for item in info.sop_class_common_extended
            ]
            identity = info.user_identity_rq
            self._user_identity = None if identity is None else replace(identity)
        elif info.user_identity_ac is not None:
            self._user_identity_response = bytes(info.user_identity_ac.server_response)
        self._raw_user_information = [replace(item) for item in info.unknown]


def _rq_context_from_wire(context: PresentationContextRQ) -> _Context:
    return _Context(
        context.context_id,
        DicomAssociateAcceptResultType.Success,
        context.abstract_syntax,
        list(context.transfer_syntaxes),
    )


def _ac_context_from_wire(
    context: PresentationContextAC, request: DicomAssociate | None
) -> _Context:
    proposed = request is not None and request._has_context(context.context_id)
    abstract_syntax = request.GetAbstract(context.context_id) if request and proposed else ""
    return _Context(
        context.context_id,
        _result_from_wire(context.result),
        abstract_syntax,
        [context.transfer_syntax] if context.transfer_syntax else [],
    )


# -- acceptor policy and negotiation -----------------------------------------------------


@dataclass
class AcceptPolicy:
    """What an acceptor supports; ``build_accept`` turns it and a request into an accept.

    ``supported`` maps each abstract syntax to the transfer syntaxes the acceptor takes, in
    its order of preference. For SOP classes in ``accept_any_transfer_syntax_for`` a
    context none of whose proposals is in that list (or that is not listed at all) is
    accepted with the requestor's first proposed transfer syntax (a storage SCP that
    keeps compressed data as it comes). ``requestor_scp_role`` lists the SOP classes for
    which the requestor may act as SCP (storage classes for C-GET); other SCP-role
    proposals are turned down. ``async_ops_window`` is the (invoked, performed) window the
    acceptor allows, 0 = unlimited; None = synchronous only, answered as (1, 1).
    ``extended_negotiation(sop_class, request_bytes)`` returns the reply bytes or None to
    send no reply for that class.
    """

    supported: Mapping[str, Sequence[str]]
    requestor_scp_role: Collection[str] = ()
    max_length: int = DEFAULT_MAX_LENGTH
    async_ops_window: tuple[int, int] | None = None
    extended_negotiation: Callable[[str, bytes], bytes | None] | None = None
    accept_any_transfer_syntax_for: Collection[str] = ()

    def supports(self, abstract_syntax: str) -> bool:
        return (
            abstract_syntax in self.supported
            or abstract_syntax in self.accept_any_transfer_syntax_for
        )

    def choose_transfer_syntax(self, abstract_syntax: str, proposed: Sequence[str]) -> str | None:
        """The acceptor's most preferred proposed transfer syntax, or None."""
        for transfer_syntax in self.supported.get(abstract_syntax, ()):
            if transfer_syntax in proposed:
                return transfer_syntax
        if abstract_syntax in self.accept_any_transfer_syntax_for:
            # Only a well-formed UID can be echoed in the A-ASSOCIATE-AC.
            return next((ts for ts in proposed if uids.is_valid_uid(ts, strict=False)), None)
        return None


def build_accept(request: DicomAssociate, policy: AcceptPolicy) -> DicomAssociate:
    """The A-ASSOCIATE-AC contents answering ``request`` under ``policy``.

    One result per proposed context; roles, extended negotiation and the asynchronous
    operations window are answered only where the request asked. AE titles and the
    application context are copied from the request; implementation identification and
    MaxLength are the acceptor's own. User identity is left to the application (set
    ``user_identity_response`` on the result to answer it).
    """
    request = _the_request(request, "build_accept's request")
    accept = DicomAssociate(False)
    accept.Called, accept.Calling = request.Called, request.Calling
    accept.ApplicationContextName = request.ApplicationContextName
    accept.MaxLength = policy.max_length
    for context in request._contexts:
        accept._contexts.append(_answer_context(context, policy))
    _answer_roles(request, accept, policy)
    _answer_extended_negotiation(request, accept, policy)
    _answer_async_window(request, accept, policy)
    return accept


def _answer_context(proposed: _Context, policy: AcceptPolicy) -> _Context:
    answer = _Context(
        proposed.context_id, DicomAssociateAcceptResultType.Success, proposed.abstract_syntax
    )
    if not policy.supports(proposed.abstract_syntax):
        answer.result = DicomAssociateAcceptResultType.AbstractSyntax
        return answer
    chosen = policy.choose_transfer_syntax(proposed.abstract_syntax, proposed.transfer_syntaxes)
    if chosen is None:
        answer.result = DicomAssociateAcceptResultType.TransferSyntax
    else:
        answer.transfer_syntaxes.append(chosen)
    return answer


def _answer_roles(request: DicomAssociate, accept: DicomAssociate, policy: AcceptPolicy) -> None:
    # PS3.7 D.3.3.4: answer per proposed role; never 1 for a role that was not proposed.
    for sop_class, (scu, scp) in request._roles_by_sop_class().items():
        scu_reply = scu and policy.supports(sop_class)
        scp_reply = scp and sop_class in policy.requestor_scp_role
        for context in accept._contexts_with(sop_class):
            context.role_select, context.scu_role, context.scp_role = True, scu_reply, scp_reply


def _answer_extended_negotiation(
    request: DicomAssociate, accept: DicomAssociate, policy: AcceptPolicy
) -> None:
    if policy.extended_negotiation is None:
        return
    for sop_class, data in request._extended_by_sop_class().items():
        reply = policy.extended_negotiation(sop_class, data)
        if reply is None:
            continue
        checked = _check_bytes(reply, "extended negotiation reply", _MAX_EXTENDED_DATA_LENGTH)
        for context in accept._contexts_with(sop_class):
            context.extended_data = checked


def _window_value(requested: int, allowed: int) -> int:
    """PS3.7 D.3.3.3: the reply is <= the request, where 0 means unlimited."""
    if requested == 0:
        return allowed
    if allowed == 0:
        return requested
    return min(requested, allowed)


def _answer_async_window(
    request: DicomAssociate, accept: DicomAssociate, policy: AcceptPolicy
) -> None:
    if not request.IsAsynchronousOperations:
        return  # absent in the request -> absent in the accept
    allowed_invoked, allowed_performed = policy.async_ops_window or (1, 1)
    accept.SetAsynchronousOperations(
        True,
        _window_value(request.InvokedOperationsCount, allowed_invoked),
        _window_value(request.PerformedOperationsCount, allowed_performed),
    )


# -- reading the outcome -------------------------------------------------------------------


def negotiated_roles(request: DicomAssociate, accept: DicomAssociate, id: int) -> tuple[bool, bool]:
    """(requestor may act as SCU, requestor may act as SCP) on context ``id`` (PS3.7 D.3.3.4).

    No role item proposed, or none returned: the defaults, requestor SCU only. Otherwise a
    role holds when it was both proposed and accepted. A (0, 0) reply therefore gives
    (False, False): no role at all, and the context is unusable (as pynetdicom reads it;
    the standard only says the proposals were turned down). The acceptor's roles are the
    mirror image: it is SCP where the requestor is SCU and SCU where the requestor is SCP.
    """
    proposed = _the_request(request, "negotiated_roles' request")._context(id).role()
    reply = accept._context(id).role()
    if proposed is None or reply is None:
        return True, False
    return proposed[0] and reply[0], proposed[1] and reply[1]


@dataclass(frozen=True)
class NegotiatedContext:
    """An accepted presentation context, with the requestor's negotiated roles."""

    context_id: int
    abstract_syntax: str
    transfer_syntax: str
    requestor_is_scu: bool
    requestor_is_scp: bool

    @property
    def usable(self) -> bool:
        return self.requestor_is_scu or self.requestor_is_scp


def negotiated_contexts(
    request: DicomAssociate, accept: DicomAssociate
) -> dict[int, NegotiatedContext]:
    """The contexts of ``request`` that ``accept`` accepted, by ID, in proposal order."""
    request = _the_request(request, "negotiated_contexts' request")
    negotiated: dict[int, NegotiatedContext] = {}
    for context in request._contexts:
        answered = accept._has_context(context.context_id)
        transfer_syntax = accept.accepted_transfer_syntax(context.context_id) if answered else None
        if transfer_syntax is None:
            continue
        as_scu, as_scp = negotiated_roles(request, accept, context.context_id)
        negotiated[context.context_id] = NegotiatedContext(
            context.context_id, context.abstract_syntax, transfer_syntax, as_scu, as_scp
        )
    return negotiated
