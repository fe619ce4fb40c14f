"""Did the training program pay off, by how much, and how sure are we? (training-roi).

Quick start::

    from training_roi import connect, ingest_folder, link, quality_report
    con = connect("roi.duckdb"); ingest_folder("data/", con); link(con)
    print(quality_report(con).warnings)
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

from training_roi.errors import MappingError, SourceError, TrainingRoiError, WarehouseError
from training_roi.ingest.folder import IngestInfo, ingest_folder
from training_roi.ingest.mapping import load_mapping
from training_roi.link import LinkInfo, link
from training_roi.warehouse.connection import connect
from training_roi.warehouse.quality import QualityReport, quality_report

try:
    __version__ = _version("training-roi")
except _PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

__all__ = [
    "IngestInfo",
    "LinkInfo",
    "MappingError",
    "QualityReport",
    "SourceError",
    "TrainingRoiError",
    "WarehouseError",
    "__version__",
    "connect",
    "ingest_folder",
    "link",
    "load_mapping",
    "quality_report",
]
