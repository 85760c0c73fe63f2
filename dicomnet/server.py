"""An accepting server driven by an accept policy (PS3.7 annex D, PS3.8 7.1).

``AcceptingServer`` listens and hands every connection to a new ``AcceptedConnection``
(or the subclass named by ``connection_type``), which answers the A-ASSOCIATE-RQ by the
server's ``AcceptPolicy``: it rejects a wrong called AE title (when asked to check it)
and a request none of whose presentation contexts is acceptable, and otherwise accepts
what the policy supports. Before that, when configured, it applies the server's
``AccessControl`` (calling AE titles, peer addresses, the most simultaneous
associations: ``dicomnet.access``) and its ``IdentityPolicy`` (user identity, PS3.7
D.3.3.7: ``dicomnet.identity``), asking ``OnReceiveUserIdentity`` (or its signal) first.
It also answers C-ECHO (PS3.4 annex A) and A-RELEASE, so a
Verification SCP is the class itself and other SCPs subclass it, adding their services::

    class Store(AcceptedConnection):
        def OnReceiveCStoreRequest(self, presentation_id, message_id, ...): ...

    class StoreServer(AcceptingServer):
        connection_type = Store

    server = StoreServer("STORESCP", STORAGE_AND_VERIFICATION)
    server.Listen("", 11112)
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence

from . import signals
from .access import AccessControl, AssociationSlots, Refusal
from .associate import DEFAULT_MAX_LENGTH, AcceptPolicy, DicomAssociate, build_accept
from .enums import (
    DicomAssociateAcceptResultType,
    DicomAssociateRejectReasonType,
    DicomAssociateRejectResultType,
    DicomAssociateRejectSourceType,
    DicomCommandStatusType,
)
from .errors import DicomExceptionCode
from .identity import IDENTITY_REJECT, IdentityDecision, IdentityPolicy, UserIdentity, response_for
from .net import DicomNet
from .sopclasses import STORAGE_SOP_CLASSES
from .timeouts import Timeouts
from .uids import DEFLATED_EXPLICIT_VR_LE, UNCOMPRESSED_TRANSFER_SYNTAXES, VERIFICATION

log = logging.getLogger("dicomnet.server")

VERIFICATION_ONLY: Mapping[str, Sequence[str]] = {VERIFICATION: UNCOMPRESSED_TRANSFER_SYNTAXES}
"""A policy's ``supported`` mapping for a Verification SCP."""

STORAGE_TRANSFER_SYNTAXES = (*UNCOMPRESSED_TRANSFER_SYNTAXES, DEFLATED_EXPLICIT_VR_LE)
"""What a storage SCP takes without transcoding, in order of preference."""

STORAGE_AND_VERIFICATION: Mapping[str, Sequence[str]] = {
    **VERIFICATION_ONLY,
    **dict.fromkeys(STORAGE_SOP_CLASSES, STORAGE_TRANSFER_SYNTAXES),
}
"""``supported`` for a storage SCP: every storage SOP class, plus Verification."""

SCP_IDLE_TIMEOUT = 120.0
"""Seconds an SCP's association may go without a complete PDU (``Timeouts.idle``) when
the server is given no ``timeouts``: a silent or dripping peer must not hold it for ever."""


class AcceptedConnection(DicomNet):
    """One accepted connection: negotiates by its server's policy, answers C-ECHO and
    A-RELEASE. ``listener`` is the server; ``association_request`` the A-ASSOCIATE-RQ
    once received (its role proposals decide, for instance, where C-GET may store)."""

    def __init__(self, listener: AcceptingServer) -> None:
        super().__init__(listener.temp_path, listener.SecurityMode, config=listener.config)
        self.listener = listener
        self.association_request: DicomAssociate | None = None

    def OnReceiveAssociateRequest(self, association: DicomAssociate) -> None:
        self.association_request = association
        listener = self.listener
        called = association.Called.strip()
        if listener.check_called_aet and called != listener.ae_title:
            log.warning(
                "rejecting association: called AE title %r is not %r", called, listener.ae_title
            )
            self.SendAssociateReject(
                DicomAssociateRejectResultType.Permanent,
                DicomAssociateRejectSourceType.User,
                DicomAssociateRejectReasonType.Called,
            )
            return
        refusal = listener.access_control.refusal(association.Calling, self.PeerAddress)
        if refusal is not None:
            self._refuse(association, refusal)
            return
        identity = association.requested_identity
        decision = self._identity_decision(association, identity)
        if decision is not None and not decision.accepted:
            who = identity.describe() if identity is not None else "none"
            self._refuse(
                association,
                Refusal(*IDENTITY_REJECT, f"user identity {who} refused: {decision.reason}"),
            )
            return
        accept = build_accept(association, listener.policy)
        if not any(
            accept.GetResult(accept.GetPresentationContextID(i))
            == DicomAssociateAcceptResultType.Success
            for i in range(accept.PresentationContextCount)
        ):
            log.warning(
                "rejecting association from %s: no acceptable presentation contexts",
                association.Calling.strip(),
            )
            self.SendAssociateReject(
                DicomAssociateRejectResultType.Permanent,
                DicomAssociateRejectSourceType.User,
                DicomAssociateRejectReasonType.Unknown,
            )
            return
        refusal = listener.slots.take(self, listener.access_control.max_associations)
        if refusal is not None:
            self._refuse(association, refusal)
            return
        if identity is not None and decision is not None:
            accept.user_identity_response = response_for(identity, decision)
            log.info("user identity %s accepted", identity.describe())
        self.SendAssociateAccept(accept)

    def OnReceiveUserIdentity(
        self, association: DicomAssociate, identity: UserIdentity
    ) -> IdentityDecision | None:
        """Decide on the user identity ``association`` proposes: an ``IdentityDecision``,
        or None to leave it to the server's ``IdentityPolicy``. The default asks the
        signal's receivers; the first that returns a decision decides."""
        signal = signals.signal_for("OnReceiveUserIdentity")
        if not signal.receivers:
            return None
        for _receiver, decision in signal.send(self, association=association, identity=identity):
            if isinstance(decision, IdentityDecision):
                return decision
        return None

    def OnClose(self, error: DicomExceptionCode, net: DicomNet) -> None:
        self.listener.slots.free(self)
        super().OnClose(error, net)

    def _identity_decision(
        self, association: DicomAssociate, identity: UserIdentity | None
    ) -> IdentityDecision | None:
        if identity is not None:
            decision = self.OnReceiveUserIdentity(association, identity)
            if decision is not None:
                return decision
        return self.listener.identity.decide(identity, association)

    def _refuse(self, association: DicomAssociate, refusal: Refusal) -> None:
        log.warning(
            "rejecting association from %r at %s: %s",
            association.Calling.strip(),
            self.PeerAddress,
            refusal.description,
        )
        self.SendAssociateReject(refusal.result, refusal.source, refusal.reason)

    def OnReceiveCEchoRequest(
        self, presentation_id: int, message_id: int, affected_class: str
    ) -> None:
        self.SendCEchoResponse(
            presentation_id, message_id, affected_class, DicomCommandStatusType.Success
        )

    def OnReceiveReleaseRequest(self) -> None:
        self.SendReleaseResponse()


class AcceptingServer(DicomNet):
    """The listening side: accepts every connection into a ``connection_type``.

    ``supported`` maps abstract syntaxes to the transfer syntaxes taken, in order of
    preference; ``accept_any_transfer_syntax_for`` and ``requestor_scp_role`` are passed
    to the ``AcceptPolicy`` (kept as ``policy``, which a subclass may replace).
    ``check_called_aet`` rejects requests whose called AE title is not ``ae_title``.
    ``access_control`` (off by default) limits who may associate and how many at once;
    ``slots`` counts the live associations. ``identity`` says how user identities are
    checked (by default they are not: no response is sent, none is required).
    Connections spool received data into ``temp_path``.
    """

    connection_type: type[AcceptedConnection] = AcceptedConnection

    def __init__(
        self,
        ae_title: str,
        supported: Mapping[str, Sequence[str]],
        *,
        max_pdu: int = DEFAULT_MAX_LENGTH,
        timeouts: Timeouts | None = None,
        check_called_aet: bool = False,
        temp_path: str | None = None,
        accept_any_transfer_syntax_for: Collection[str] = (),
        requestor_scp_role: Collection[str] = (),
        access_control: AccessControl | None = None,
        identity: IdentityPolicy | None = None,
        async_ops_window: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(temp_path, timeouts=timeouts or Timeouts(idle=SCP_IDLE_TIMEOUT))
        self.ae_title = ae_title
        self.check_called_aet = check_called_aet
        self.access_control = access_control or AccessControl()
        self.identity = identity or IdentityPolicy()
        self.slots = AssociationSlots()
        self.policy = AcceptPolicy(
            supported=dict(supported),
            max_length=max_pdu,
            accept_any_transfer_syntax_for=accept_any_transfer_syntax_for,
            requestor_scp_role=requestor_scp_role,
            async_ops_window=async_ops_window,
        )

    def OnAccept(self, error: DicomExceptionCode) -> None:
        self.Accept(self.connection_type(self))

    def OnClose(self, error: DicomExceptionCode, net: DicomNet) -> None:
        # The child frees its slot in its own OnClose; this covers a child class that
        # overrides OnClose without calling super().
        self.slots.free(net)
        super().OnClose(error, net)
