"""One frozen configuration object per ``DicomNet``: every limit and time limit.

Nothing in dicomnet reads a module-level tunable: ``NetConfig`` is handed to the
``DicomNet``, which passes it down to its protocol engine, DIMSE session and channel.
A configuration is a value: derive a variant with ``dataclasses.replace``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .timeouts import Timeouts


@dataclass(frozen=True)
class NetConfig:
    """Limits of one connection (all sizes in bytes).

    timeouts: the network time limits (``Timeouts``).
    hard_pdu_limit: the largest P-DATA-TF PDU received even where "no limit" (0) was
        advertised, so a lying peer cannot make us allocate without bound.
    max_non_pdata_length: the largest other PDU (A-ASSOCIATE-RQ/AC...) accepted.
    receive_buffer: initial size of a connection's receive buffer. It grows only with
        the bytes that really arrive: to hold a PDU larger than the buffer (at most
        doubling what has arrived of it, never sized from a PDU header alone), and, up
        to ``max_receive_buffer``, when reads keep filling it.
    max_receive_buffer: how far a busy connection's receive buffer grows so one read
        takes many PDUs (a single PDU larger than this still fits, within the PDU
        limits).
    read_budget: bytes read from one connection per readiness event before other
        connections get a turn.
    send_backlog_high / send_backlog_low: a thread calling ``Send*`` waits while more
        than ``high`` messages wait to be sent, until the backlog drains to ``low``.
    direct_write_limit: a message whose data set is at most this large is written by the
        thread that sends it when nothing else is queued (no hand-over to the loop); a
        larger one is streamed by the loop thread alone.
    max_inflated_data_set: the most a received deflated data set may inflate to before
        it is refused (deflate packs about 1000:1: a few kilobytes must not buy a GB).
    kept_responses: final responses kept per connection for ``wait_response``
        (programs that only use callbacks never take them).
    listen_backlog: default length of the kernel's queue of connections not yet
        accepted.
    """

    timeouts: Timeouts = field(default_factory=Timeouts)
    hard_pdu_limit: int = 64 << 20
    max_non_pdata_length: int = 1 << 20
    receive_buffer: int = 4 << 10
    max_receive_buffer: int = 256 << 10
    read_budget: int = 8 << 20
    send_backlog_high: int = 64
    send_backlog_low: int = 16
    direct_write_limit: int = 1 << 20
    max_inflated_data_set: int = 64 << 20
    kept_responses: int = 4096
    listen_backlog: int = 1024

    def __post_init__(self) -> None:
        if not 0 <= self.send_backlog_low <= self.send_backlog_high:
            raise ValueError("send_backlog_low must be between 0 and send_backlog_high")
        for name in (
            "hard_pdu_limit",
            "max_non_pdata_length",
            "receive_buffer",
            "read_budget",
            "max_inflated_data_set",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.max_receive_buffer < self.receive_buffer:
            raise ValueError("max_receive_buffer must be at least receive_buffer")
