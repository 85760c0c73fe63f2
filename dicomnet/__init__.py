"""dicomnet: DICOM networking with the LEADTOOLS DicomNet event-callback API.

Subclass ``DicomNet`` and override its ``On*`` callbacks (or subscribe to the blinker
signals in ``dicomnet.signals``), build associations with ``DicomAssociate``, and call
``Send*`` from any thread. See README.rst for examples.
"""

from __future__ import annotations

from . import signals, uids
from .associate import AcceptPolicy, DicomAssociate, build_accept
from .config import NetConfig
from .dimse.status import StatusCategory, status_category, status_description
from .enums import (
    DicomAbortReasonType,
    DicomAbortSourceType,
    DicomAssociateAcceptResultType,
    DicomAssociateRejectReasonType,
    DicomAssociateRejectResultType,
    DicomAssociateRejectSourceType,
    DicomCommandPriorityType,
    DicomCommandStatusType,
    DicomCommandType,
    DicomNetIpTypeFlags,
    DicomNetSecurityMode,
    DicomPduType,
    DicomRoleSupport,
)
from .errors import (
    AssociationAborted,
    AssociationRejected,
    DicomException,
    DicomExceptionCode,
    DIMSEError,
    PDUError,
)
from .net import DicomNet
from .response import Response
from .timeouts import Timeouts

__version__ = "0.1.0"

__all__ = [
    "AcceptPolicy",
    "AssociationAborted",
    "AssociationRejected",
    "DIMSEError",
    "DicomAbortReasonType",
    "DicomAbortSourceType",
    "DicomAssociate",
    "DicomAssociateAcceptResultType",
    "DicomAssociateRejectReasonType",
    "DicomAssociateRejectResultType",
    "DicomAssociateRejectSourceType",
    "DicomCommandPriorityType",
    "DicomCommandStatusType",
    "DicomCommandType",
    "DicomException",
    "DicomExceptionCode",
    "DicomNet",
    "DicomNetIpTypeFlags",
    "DicomNetSecurityMode",
    "DicomPduType",
    "DicomRoleSupport",
    "NetConfig",
    "PDUError",
    "Response",
    "StatusCategory",
    "Timeouts",
    "build_accept",
    "signals",
    "status_category",
    "status_description",
    "uids",
]
