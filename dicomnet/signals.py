"""Blinker signals, one per ``DicomNet`` callback, named exactly as the callback.

Every ``On*`` method's default implementation sends its signal with the ``DicomNet`` as
sender and the callback's parameters as keyword arguments, so an application can either
subclass and override, or subscribe::

    from dicomnet import signals

    @signals.OnReceiveCEchoRequest.connect
    def echo(net, presentation_id, message_id, affected_class): ...

Subscribe with ``sender=net`` to hear one ``DicomNet`` only; what a subscription switches
on (raw PDUs for ``OnReceive``, the automatic refusal of requests nobody handles) is
decided per sender, when the event happens. A subclass that overrides a callback and calls
``super()`` keeps its signal working.

The signal names come from the callbacks themselves: the transport and association ones
listed here, and one per DIMSE message from its description (``dicomnet.dimse.messages``).
"""

from __future__ import annotations

from blinker import Namespace, Signal

from .dimse.messages import MESSAGES

namespace = Namespace()

_LINK_CALLBACKS = (
    "OnAccept",
    "OnConnect",
    "OnClose",
    "OnReceive",
    "OnSend",
    "OnSecureLinkReady",
    "OnVerify",
    "OnPrivateKeyPassword",
    "OnReceiveAssociateRequest",
    "OnReceiveAssociateAccept",
    "OnReceiveAssociateReject",
    "OnReceiveReleaseRequest",
    "OnReceiveReleaseResponse",
    "OnReceiveAbort",
    "OnReceiveData",
    "OnReceiveUnknown",
)

CALLBACK_NAMES: tuple[str, ...] = (*_LINK_CALLBACKS, *(s.callback for s in MESSAGES.values()))
"""Every ``DicomNet`` callback, hence every signal."""

SERVER_CALLBACK_NAMES: tuple[str, ...] = ("OnReceiveUserIdentity",)
"""Callbacks of ``dicomnet.server.AcceptedConnection`` beyond ``DicomNet``'s, with signals."""

_SIGNALS: dict[str, Signal] = {
    name: namespace.signal(name) for name in (*CALLBACK_NAMES, *SERVER_CALLBACK_NAMES)
}


def signal_for(callback_name: str) -> Signal:
    """The signal of a callback (``signal_for("OnAccept") is signals.OnAccept``)."""
    try:
        return _SIGNALS[callback_name]
    except KeyError:
        raise KeyError(f"no DicomNet callback named {callback_name!r}") from None


def has_receivers(callback_name: str, sender: object) -> bool:
    """True when the signal has a receiver for ``sender`` (or for every sender)."""
    signal = signal_for(callback_name)
    if not signal.receivers:  # the common case, decided without a scan
        return False
    return any(True for _ in signal.receivers_for(sender))


def __getattr__(name: str) -> Signal:
    """``signals.OnReceiveCEchoRequest`` and ``from dicomnet.signals import OnAccept``."""
    if name in _SIGNALS:
        return _SIGNALS[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
