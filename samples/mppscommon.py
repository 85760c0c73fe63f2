"""What the Modality Performed Procedure Step samples share (PS3.4 annex F.7).

The MPPS SOP class, the transfer syntaxes both samples use for it, and the values of
Performed Procedure Step Status (0040,0252) that PS3.3 C.4.14 defines.
"""

from __future__ import annotations

from dicomnet.uids import EXPLICIT_VR_LE, IMPLICIT_VR_LE

MPPS_SOP_CLASS = "1.2.840.10008.3.1.2.3.3"
MPPS_TRANSFER_SYNTAXES = (EXPLICIT_VR_LE, IMPLICIT_VR_LE)

IN_PROGRESS = "IN PROGRESS"
COMPLETED = "COMPLETED"
DISCONTINUED = "DISCONTINUED"
STEP_STATUSES = frozenset({IN_PROGRESS, COMPLETED, DISCONTINUED})
