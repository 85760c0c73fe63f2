"""dicomnet: DICOM networking with the LEADTOOLS DicomNet event-callback API."""

from __future__ import annotations

__version__ = "0.1.0"
