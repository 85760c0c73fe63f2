"""Outstanding DIMSE operations of one association, and the asynchronous window.

PS3.7 D.3.3.3: without a negotiated Asynchronous Operations Window each side may have one
request outstanding at a time; with one, up to "maximum number of operations invoked"
(0 = unlimited). Responses are matched to requests by message ID, in any order; a
response that matches nothing is reported so the caller can drop it.
"""

from __future__ import annotations

from .errors import DicomException, DicomExceptionCode


class OutstandingOperations:
    """Requests this side invoked and still waits on (message ID -> command field), and
    requests the peer invoked that this side has not finished answering."""

    def __init__(self, max_invoked: int = 1, max_performed: int = 1) -> None:
        self.max_invoked = max_invoked  # 0 = unlimited
        self.max_performed = max_performed  # 0 = unlimited
        self._invoked: dict[int, int] = {}
        self._performing: set[int] = set()

    def __len__(self) -> int:
        return len(self._invoked)

    def __contains__(self, message_id: int) -> bool:
        return message_id in self._invoked

    def outstanding(self) -> list[tuple[int, int]]:
        """(message ID, command field) of every request still waiting for its response."""
        return list(self._invoked.items())

    def check_can_invoke(self, message_id: int) -> None:
        """Raise unless a new request with ``message_id`` may be sent now."""
        if message_id in self._invoked:
            raise DicomException(
                DicomExceptionCode.Parameter,
                f"message ID {message_id} is already used by an outstanding request",
            )
        if self.max_invoked and len(self._invoked) >= self.max_invoked:
            raise DicomException(
                DicomExceptionCode.Parameter,
                f"{len(self._invoked)} request(s) already outstanding; the negotiated "
                f"asynchronous operations window allows {self.max_invoked} "
                "(wait for the response first)",
            )

    def invoked(self, message_id: int, command_field: int) -> None:
        self._invoked[message_id] = command_field

    def responded(self, message_id: int, final: bool) -> bool:
        """Record a response; False when no request with that ID is outstanding."""
        if message_id not in self._invoked:
            return False
        if final:
            del self._invoked[message_id]
        return True

    def may_perform(self, message_id: int) -> bool:
        """Record a received request; False when it exceeds the performed window."""
        if self.max_performed and len(self._performing) >= self.max_performed:
            return False
        self._performing.add(message_id)
        return True

    def performed(self, message_id: int) -> None:
        """The final response to the peer's request ``message_id`` was sent."""
        self._performing.discard(message_id)

    def is_performing(self, message_id: int) -> bool:
        return message_id in self._performing

    @property
    def performing(self) -> int:
        return len(self._performing)
