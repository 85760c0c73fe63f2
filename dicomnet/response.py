"""``Response``: the final answer to one of our DIMSE requests, as ``wait_response`` gives it.

A frozen record of the response's command set (PS3.7 9.3 / 10.3), its status and status
class (PS3.7 annex C), and its data set, decoded only when first asked for (a C-FIND
answer nobody reads costs nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from .dimse.status import StatusCategory, status_category, status_description

if TYPE_CHECKING:  # annotations only: pydicom loads when a data set is made
    from pydicom import Dataset

_UNDECODED = object()


@dataclass(frozen=True, eq=False, slots=True)
class Response:
    """One received DIMSE response.

    ``command`` maps the command set's pydicom keywords to values (``"Status"``,
    ``"ErrorComment"``, ``"NumberOfFailedSuboperations"``...), read-only.
    """

    presentation_id: int
    command: Mapping[str, object]
    _decode: Callable[[], Dataset | None] = field(repr=False)
    _data_set: object = field(repr=False, default=_UNDECODED)

    @classmethod
    def of(
        cls,
        presentation_id: int,
        command: Mapping[str, object],
        decode: Callable[[], Dataset | None],
    ) -> Response:
        """``decode`` gives the data set on first use (it may run twice if two threads
        ask at once; decoding is pure, so either result is the same)."""
        return cls(presentation_id, MappingProxyType(command), decode)

    @property
    def command_field(self) -> int:
        return self._int("CommandField")

    @property
    def message_id(self) -> int:
        """The message ID of the request this answers."""
        return self._int("MessageIDBeingRespondedTo")

    @property
    def status(self) -> int:
        return self._int("Status")

    @property
    def category(self) -> StatusCategory:
        return status_category(self.status)

    @property
    def description(self) -> str:
        """The status in words, as the message's service defines it."""
        return status_description(self.status, self.command_field)

    @property
    def error_comment(self) -> str:
        value = self.command.get("ErrorComment")
        return value if isinstance(value, str) else ""

    @property
    def affected_sop_class_uid(self) -> str:
        return self._str("AffectedSOPClassUID")

    @property
    def affected_sop_instance_uid(self) -> str:
        return self._str("AffectedSOPInstanceUID")

    @property
    def suboperations(self) -> tuple[int, int, int, int]:
        """(remaining, completed, failed, warning) of a C-GET/C-MOVE response;
        -1 where the element is absent (remaining is optional in a final response)."""
        return (
            self._int("NumberOfRemainingSuboperations", -1),
            self._int("NumberOfCompletedSuboperations", -1),
            self._int("NumberOfFailedSuboperations", -1),
            self._int("NumberOfWarningSuboperations", -1),
        )

    @property
    def dataset(self) -> Dataset | None:
        """The response's data set, decoded on first access (None without one)."""
        if self._data_set is _UNDECODED:
            object.__setattr__(self, "_data_set", self._decode())
        return self._data_set  # type: ignore[return-value]

    def _int(self, keyword: str, default: int = 0) -> int:
        value = self.command.get(keyword)
        return value if isinstance(value, int) else default

    def _str(self, keyword: str) -> str:
        value = self.command.get(keyword)
        return value if isinstance(value, str) else ""
