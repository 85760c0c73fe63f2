"""Blinker signals, one per ``DicomNet`` callback, named exactly as the callback.

Every ``On*`` method's default implementation sends its signal with the ``DicomNet`` as
sender and the callback's parameters as keyword arguments, so an application can either
subclass and override, or subscribe::

    from dicomnet import signals

    @signals.OnReceiveCEchoRequest.connect
    def echo(net, presentation_id, message_id, affected_class): ...

A subclass that overrides a callback and calls ``super()`` keeps its signal working.
"""

from __future__ import annotations

from blinker import Namespace, Signal

namespace = Namespace()

CALLBACK_NAMES = (
    # transport
    "OnAccept",
    "OnConnect",
    "OnClose",
    "OnReceive",
    "OnSend",
    "OnSecureLinkReady",
    # association
    "OnReceiveAssociateRequest",
    "OnReceiveAssociateAccept",
    "OnReceiveAssociateReject",
    "OnReceiveReleaseRequest",
    "OnReceiveReleaseResponse",
    "OnReceiveAbort",
    # DIMSE
    "OnReceiveData",
    "OnReceiveUnknown",
    "OnReceiveCEchoRequest",
    "OnReceiveCEchoResponse",
    "OnReceiveCStoreRequest",
    "OnReceiveCStoreResponse",
    "OnReceiveCFindRequest",
    "OnReceiveCFindResponse",
    "OnReceiveCGetRequest",
    "OnReceiveCGetResponse",
    "OnReceiveCMoveRequest",
    "OnReceiveCMoveResponse",
    "OnReceiveCCancelRequest",
    "OnReceiveNReportRequest",
    "OnReceiveNReportResponse",
    "OnReceiveNGetRequest",
    "OnReceiveNGetResponse",
    "OnReceiveNSetRequest",
    "OnReceiveNSetResponse",
    "OnReceiveNActionRequest",
    "OnReceiveNActionResponse",
    "OnReceiveNCreateRequest",
    "OnReceiveNCreateResponse",
    "OnReceiveNDeleteRequest",
    "OnReceiveNDeleteResponse",
)


def signal_for(callback_name: str) -> Signal:
    """The signal of a callback (``signal_for("OnAccept") is signals.OnAccept``)."""
    if callback_name not in CALLBACK_NAMES:
        raise KeyError(f"no DicomNet callback named {callback_name!r}")
    return namespace.signal(callback_name)


OnAccept = signal_for("OnAccept")
OnConnect = signal_for("OnConnect")
OnClose = signal_for("OnClose")
OnReceive = signal_for("OnReceive")
OnSend = signal_for("OnSend")
OnSecureLinkReady = signal_for("OnSecureLinkReady")
OnReceiveAssociateRequest = signal_for("OnReceiveAssociateRequest")
OnReceiveAssociateAccept = signal_for("OnReceiveAssociateAccept")
OnReceiveAssociateReject = signal_for("OnReceiveAssociateReject")
OnReceiveReleaseRequest = signal_for("OnReceiveReleaseRequest")
OnReceiveReleaseResponse = signal_for("OnReceiveReleaseResponse")
OnReceiveAbort = signal_for("OnReceiveAbort")
OnReceiveData = signal_for("OnReceiveData")
OnReceiveUnknown = signal_for("OnReceiveUnknown")
OnReceiveCEchoRequest = signal_for("OnReceiveCEchoRequest")
OnReceiveCEchoResponse = signal_for("OnReceiveCEchoResponse")
OnReceiveCStoreRequest = signal_for("OnReceiveCStoreRequest")
OnReceiveCStoreResponse = signal_for("OnReceiveCStoreResponse")
OnReceiveCFindRequest = signal_for("OnReceiveCFindRequest")
OnReceiveCFindResponse = signal_for("OnReceiveCFindResponse")
OnReceiveCGetRequest = signal_for("OnReceiveCGetRequest")
OnReceiveCGetResponse = signal_for("OnReceiveCGetResponse")
OnReceiveCMoveRequest = signal_for("OnReceiveCMoveRequest")
OnReceiveCMoveResponse = signal_for("OnReceiveCMoveResponse")
OnReceiveCCancelRequest = signal_for("OnReceiveCCancelRequest")
OnReceiveNReportRequest = signal_for("OnReceiveNReportRequest")
OnReceiveNReportResponse = signal_for("OnReceiveNReportResponse")
OnReceiveNGetRequest = signal_for("OnReceiveNGetRequest")
OnReceiveNGetResponse = signal_for("OnReceiveNGetResponse")
OnReceiveNSetRequest = signal_for("OnReceiveNSetRequest")
OnReceiveNSetResponse = signal_for("OnReceiveNSetResponse")
OnReceiveNActionRequest = signal_for("OnReceiveNActionRequest")
OnReceiveNActionResponse = signal_for("OnReceiveNActionResponse")
OnReceiveNCreateRequest = signal_for("OnReceiveNCreateRequest")
OnReceiveNCreateResponse = signal_for("OnReceiveNCreateResponse")
OnReceiveNDeleteRequest = signal_for("OnReceiveNDeleteRequest")
OnReceiveNDeleteResponse = signal_for("OnReceiveNDeleteResponse")
