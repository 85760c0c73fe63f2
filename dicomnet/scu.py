"""Blocking helpers for the requesting side of an association (an SCU).

Proposing presentation contexts, with SCP/SCU role selection where asked (PS3.7 D.3.3.4);
connecting and associating, releasing (PS3.8 7.1, 7.2); finding the context accepted for
an abstract syntax; and waiting for the final response of a request that sends pending
responses or sub-operations first (C-FIND, C-GET, C-MOVE, PS3.7 9.1.2-9.1.4). Call them
from the application's threads, never from a callback.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from .associate import DicomAssociate
from .enums import DicomAssociateAcceptResultType, DicomRoleSupport
from .errors import DicomException, DicomExceptionCode
from .net import DicomNet
from .response import Response
from .session import operations_window

ContextSpec = tuple[str, Sequence[str]]
"""A context to propose: (abstract syntax, transfer syntaxes in order of preference)."""


def build_request(
    calling: str,
    called: str,
    max_pdu: int,
    contexts: Sequence[ContextSpec],
    scp_role_for: Collection[str] = (),
) -> DicomAssociate:
    """An A-ASSOCIATE-RQ with one context per spec (IDs 1, 3, 5...). For the abstract
    syntaxes in ``scp_role_for`` the requestor proposes to be SCP only (the storage
    classes of a C-GET, a Storage Commitment report on a new association)."""
    request = DicomAssociate(True)
    request.Calling, request.Called, request.MaxLength = calling, called, max_pdu
    for number, (abstract_syntax, transfer_syntaxes) in enumerate(contexts):
        context_id = 2 * number + 1
        request.AddPresentationContext(
            context_id, DicomAssociateAcceptResultType.Success, abstract_syntax
        )
        for transfer_syntax in transfer_syntaxes:
            request.AddTransfer(context_id, transfer_syntax)
        if abstract_syntax in scp_role_for:
            request.SetRoleSelect(
                context_id, True, DicomRoleSupport.Unsupported, DicomRoleSupport.Supported
            )
    return request


def open_association(
    net: DicomNet, host: str, port: int, request: DicomAssociate
) -> DicomAssociate:
    """Connect ``net`` to ``host``:``port`` and associate; the accept. Raises
    ``DicomException`` on refusal, reject, abort or timeout."""
    net.Connect(None, 0, host, port)
    net.wait_connected()
    net.SendAssociateRequest(request)
    return net.wait_associated()


def outstanding_limit(accepted: DicomAssociate) -> int:
    """How many requests the requestor may have outstanding on the association its
    A-ASSOCIATE-AC ``accepted`` opened (PS3.7 D.3.3.3): 1 without an asynchronous
    operations window, 0 for no limit."""
    return operations_window(accepted, is_requestor=True)[0]


def release(net: DicomNet) -> None:
    """Release the association and wait for the peer's confirmation."""
    net.SendReleaseRequest()
    net.wait_released()


def accepted_context_id(accepted: DicomAssociate, abstract_syntax: str) -> int | None:
    """The ID of a context accepted for ``abstract_syntax``, or None."""
    presentation_id = accepted.FindAbstract(abstract_syntax)
    if not presentation_id:
        return None
    if accepted.GetResult(presentation_id) != DicomAssociateAcceptResultType.Success:
        return None
    return presentation_id


def wait_final_response(
    net: DicomNet, message_id: int, timeout: float | None, progress: Callable[[], int]
) -> Response:
    """The final response to ``message_id``. The timeout counts from the last progress
    (``progress()`` returns a number that changes with every pending response or
    sub-operation the application saw), so a long retrieve that keeps moving is not cut
    off while a silent one is."""
    while True:
        seen = progress()
        try:
            return net.wait_response(message_id, timeout)
        except DicomException as exc:
            if exc.Code != DicomExceptionCode.NetTimeout or progress() == seen:
                raise
