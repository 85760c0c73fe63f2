"""One object for every network timeout (PS3.8 9.1.5 ARTIM and the implementation's own).

Peers and users suffer from several loosely named timeouts; dicomnet has one frozen value
object, given per DicomNet (or per association), never a module global. ``None`` means
"wait for ever". All values are seconds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Timeouts:
    """Network time limits.

    connect: TCP connection set-up (requestor side).
    artim: the PS3.8 ARTIM timer -- how long an acceptor waits for the A-ASSOCIATE-RQ after
        a connection opens, and how long either side waits for the peer to close the
        connection after a reject, release or abort.
    acse: how long a requestor waits for A-ASSOCIATE-AC/RJ, either side for A-RELEASE-RP
        (after a release collision too), and the application may take to answer an
        A-ASSOCIATE-RQ or A-RELEASE-RQ; when it passes, the association is aborted
        (PS3.8 defines no timer there).
    idle: how long an established association may go without receiving a complete PDU
        before it is aborted: a peer that sends nothing, or drips bytes, is cut off.
        None (the default here) never; ``dicomnet.server`` gives SCPs a finite one.
    dimse: how long one of our requests may wait for its response while nothing
        arrives: then the association is aborted (as DCMTK's ``-td``). It is also the
        default time ``wait_response`` waits.
    tls_handshake: how long a TLS handshake (PS3.15 annex B) may take, from the TCP
        connection to the secure link, on either side; a peer that stalls halfway is
        cut off (DCMTK waits 30 s too).
    """

    connect: float | None = 30.0
    artim: float = 30.0
    acse: float | None = 30.0
    idle: float | None = None
    dimse: float | None = None
    tls_handshake: float | None = 30.0


def earliest(first: float | None, second: float | None) -> float | None:
    """The earlier of two deadlines, None standing for "no deadline"."""
    if first is None:
        return second
    if second is None or first <= second:
        return first
    return second
