"""dicomnet: DICOM networking with the LEADTOOLS DicomNet event-callback API.

Subclass ``DicomNet`` and override its ``On*`` callbacks (or subscribe to the blinker
signals in ``dicomnet.signals``), build associations with ``DicomAssociate``, and call
``Send*`` from any thread. See README.rst for examples.
"""

from __future__ import annotations

from . import signals, uids
from .associate import (
    MAX_OPERATIONS_WINDOW,
    MAX_PRESENTATION_CONTEXTS,
    AcceptPolicy,
    DicomAssociate,
    NegotiatedContext,
    build_accept,
    negotiated_contexts,
    negotiated_roles,
)
from .config import NetConfig
from .dimse.part10 import CONVERTIBLE_TRANSFER_SYNTAXES, Part10File, read_part10_header
from .dimse.status import (
    CANNOT_UNDERSTAND,
    StatusCategory,
    status_category,
    status_description,
)
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
    DicomOpenSslOptionsFlags,
    DicomOpenSslVerificationFlags,
    DicomPduType,
    DicomRoleSupport,
    DicomSslMethodType,
    DicomTlsAuthenticationMethodType,
    DicomTlsCertificateType,
    DicomTlsCipherSuiteType,
    DicomTlsEncryptionMethodType,
    DicomTlsExchangeMethodType,
    DicomTlsMacMethodType,
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
from .security import DicomOpenSslContextCreationSettings, DicomOpenSslVersion
from .timeouts import Timeouts

__version__ = "0.1.0"

__all__ = [
    "CANNOT_UNDERSTAND",
    "CONVERTIBLE_TRANSFER_SYNTAXES",
    "MAX_OPERATIONS_WINDOW",
    "MAX_PRESENTATION_CONTEXTS",
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
    "DicomOpenSslContextCreationSettings",
    "DicomOpenSslOptionsFlags",
    "DicomOpenSslVerificationFlags",
    "DicomOpenSslVersion",
    "DicomPduType",
    "DicomRoleSupport",
    "DicomSslMethodType",
    "DicomTlsAuthenticationMethodType",
    "DicomTlsCertificateType",
    "DicomTlsCipherSuiteType",
    "DicomTlsEncryptionMethodType",
    "DicomTlsExchangeMethodType",
    "DicomTlsMacMethodType",
    "NetConfig",
    "NegotiatedContext",
    "PDUError",
    "Part10File",
    "Response",
    "StatusCategory",
    "Timeouts",
    "build_accept",
    "negotiated_contexts",
    "negotiated_roles",
    "read_part10_header",
    "signals",
    "status_category",
    "status_description",
    "uids",
]
