#!/usr/bin/env python3
"""Retrieve SCU: sends one C-GET to PEER PORT and stores the instances it receives
(options as DCMTK's getscu; PS3.4 C.4.3 Query/Retrieve GET).

The C-STORE sub-operations come back on the same association, so every storage SOP class
to receive is proposed with SCP/SCU role selection, the requestor taking the SCP role
(PS3.7 D.3.3.4). A default set of common storage classes is proposed; ``--sop-class``
adds more (128 presentation contexts at most, one of them the C-GET one). Received files
are written to -od as ``<modality>.<SOP instance UID>``, as DCMTK names them.
``--cancel-after N`` sends C-CANCEL after N sub-operations.

Exit status 0 only when every sub-operation succeeded (or the retrieve was cancelled as
asked without failures), 1 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from common import (
    add_common_options,
    associate_for,
    fail,
    run_scu,
    setup_logging,
    timeouts_from,
)
from pydicom import Dataset
from pydicom import uid as known
from qrcommon import (
    DEFAULT_LEVEL,
    GET_MODELS,
    add_model_options,
    format_progress,
    print_retrieve_response,
)

from dicomnet import (
    DicomCommandPriorityType,
    DicomCommandStatusType,
    DicomNet,
    Timeouts,
)
from dicomnet.qr import build_identifier, retrieve_request
from dicomnet.scu import release, wait_final_response
from dicomnet.storage import keep_received_file

log = logging.getLogger("samples.getscu")

# Proposed unless --sop-class adds more: the common image, RT, SR and document classes.
DEFAULT_STORAGE_SOP_CLASSES = (
    known.CTImageStorage,
    known.EnhancedCTImageStorage,
    known.MRImageStorage,
    known.EnhancedMRImageStorage,
    known.EnhancedMRColorImageStorage,
    known.MRSpectroscopyStorage,
    known.ComputedRadiographyImageStorage,
    known.DigitalXRayImageStorageForPresentation,
    known.DigitalXRayImageStorageForProcessing,
    known.DigitalMammographyXRayImageStorageForPresentation,
    known.DigitalMammographyXRayImageStorageForProcessing,
    known.BreastTomosynthesisImageStorage,
    known.UltrasoundImageStorage,
    known.UltrasoundMultiFrameImageStorage,
    known.EnhancedUSVolumeStorage,
    known.SecondaryCaptureImageStorage,
    known.MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    known.MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    known.MultiFrameTrueColorSecondaryCaptureImageStorage,
    known.NuclearMedicineImageStorage,
    known.PositronEmissionTomographyImageStorage,
    known.EnhancedPETImageStorage,
    known.RTImageStorage,
    known.RTDoseStorage,
    known.RTStructureSetStorage,
    known.RTPlanStorage,
    known.RTIonPlanStorage,
    known.RTBeamsTreatmentRecordStorage,
    known.XRayAngiographicImageStorage,
    known.EnhancedXAImageStorage,
    known.XRayRadiofluoroscopicImageStorage,
    known.VLPhotographicImageStorage,
    known.VLEndoscopicImageStorage,
    known.VLWholeSlideMicroscopyImageStorage,
    known.OphthalmicPhotography8BitImageStorage,
    known.BasicTextSRStorage,
    known.EnhancedSRStorage,
    known.ComprehensiveSRStorage,
    known.KeyObjectSelectionDocumentStorage,
    known.EncapsulatedPDFStorage,
    known.GrayscaleSoftcopyPresentationStateStorage,
    known.SegmentationStorage,
    known.RawDataStorage,
    known.SpatialRegistrationStorage,
    known.TwelveLeadECGWaveformStorage,
)


class GetSCU(DicomNet):
    """Stores C-GET sub-operations into ``output_dir`` and reports progress."""

    def __init__(self, output_dir: Path, cancel_after: int | None, timeouts: Timeouts) -> None:
        # Spool into the output directory itself, so keeping a file is an atomic rename.
        super().__init__(str(output_dir), timeouts=timeouts)
        self.parse_received_data = False
        self.output_dir = output_dir
        self.cancel_after = cancel_after
        self.retrieve: tuple[int, int] | None = None  # (presentation ID, message ID)
        self.sub_operations = 0
        self.responses = 0
        self.cancel_sent = False

    def OnReceiveCStoreRequest(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        instance: str,
        priority: DicomCommandPriorityType,
        move_ae: str,
        move_message_id: int,
        data_set: Dataset | None,
    ) -> None:
        status = self._keep(affected_class, instance)
        self.SendCStoreResponse(presentation_id, message_id, affected_class, instance, status)
        self.sub_operations += 1
        if (
            self.cancel_after is not None
            and self.sub_operations >= self.cancel_after
            and not self.cancel_sent
            and self.retrieve is not None
        ):
            self.cancel_sent = True
            self.SendCCancelRequest(*self.retrieve)

    def _keep(self, sop_class: str, instance: str) -> DicomCommandStatusType:
        received = self.received_file
        if received is None:
            return DicomCommandStatusType.ProcessingFailure
        try:
            path = keep_received_file(received, self.output_dir, sop_class, instance)
        except OSError as exc:
            log.error("cannot keep %s: %s", instance, exc)
            return DicomCommandStatusType.RefusedOutOfResources
        log.info("stored %s", path)
        return DicomCommandStatusType.Success

    def OnReceiveCGetResponse(
        self,
        presentation_id: int,
        message_id: int,
        affected_class: str,
        status: DicomCommandStatusType,
        remaining: int,
        completed: int,
        failed: int,
        warning: int,
        data_set: Dataset | None,
    ) -> None:
        self.responses += 1
        print_retrieve_response("getscu", status, (remaining, completed, failed, warning), data_set)


def storage_classes(extra: list[str]) -> list[str]:
    return list(dict.fromkeys([*DEFAULT_STORAGE_SOP_CLASSES, *extra]))


def get(args: argparse.Namespace, net: GetSCU) -> int:
    sop_class = GET_MODELS[args.model]
    storage = storage_classes(args.sop_classes)
    try:
        request = retrieve_request(args.aet, args.aec, args.pdu, sop_class, storage)
    except ValueError as exc:
        return fail("getscu", str(exc))
    presentation_id = associate_for(net, args, request, sop_class, "C-GET")
    identifier = build_identifier(args.keys, DEFAULT_LEVEL[args.model])
    message_id = net.next_message_id()
    net.retrieve = (presentation_id, message_id)
    net.SendCGetRequest(
        presentation_id, message_id, sop_class, DicomCommandPriorityType.Medium, identifier
    )
    final = wait_final_response(
        net, message_id, args.timeout, lambda: net.sub_operations + net.responses
    )
    release(net)
    status = final.status
    _, completed, failed, warning = final.suboperations
    print(
        f"getscu: final status 0x{status:04X} ({final.description}): "
        f"{format_progress(-1, completed, failed, warning)}; "
        f"{net.sub_operations} instance(s) received into {args.output_directory}"
    )
    cancelled_as_asked = status == DicomCommandStatusType.Cancel and net.cancel_sent
    if (
        (status == DicomCommandStatusType.Success or cancelled_as_asked)
        and failed <= 0
        and warning <= 0
    ):
        return 0
    return fail(
        "getscu",
        f"C-GET ended with status 0x{status:04X}, {failed} failed, "
        f"{warning} warning sub-operation(s)",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="getscu", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_options(parser, scu=True)
    parser.set_defaults(aet="GETSCU")
    add_model_options(parser)
    parser.add_argument(
        "-od",
        "--output-directory",
        type=Path,
        default=Path("."),
        help="where received instances are written (default: .)",
    )
    parser.add_argument(
        "--sop-class",
        dest="sop_classes",
        action="append",
        default=[],
        metavar="UID",
        help="also propose this storage SOP class",
    )
    parser.add_argument(
        "--cancel-after", type=int, metavar="N", help="send C-CANCEL after N sub-operations"
    )
    parser.add_argument("peer")
    parser.add_argument("port", type=int)
    args = parser.parse_args(argv)
    setup_logging(args)
    if not args.output_directory.is_dir():
        return fail("getscu", f"output directory {args.output_directory} does not exist")

    DicomNet.Startup()
    net = GetSCU(args.output_directory, args.cancel_after, timeouts_from(args))
    return run_scu("getscu", net, lambda net: get(args, net))


if __name__ == "__main__":
    sys.exit(main())
