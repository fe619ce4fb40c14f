"""The data folder being written: its CSV, Parquet and JSON files, and how many rows each holds.

The sales and the customer scenarios write the same kinds of file the same way; :class:`_Folder`
keeps the counts that end up in truth.json (``files``, ``mess.is_deleted_rows``) and in
:class:`~training_roi.simulate.SimulationInfo`, in the order the files were written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import polars as pl


@dataclass
class _Folder:
    """A data folder: where it is, the data rows written per file, the IsDeleted rows per CRM object."""

    out: Path
    files: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)

    def csv(self, name: str, df: pl.DataFrame, *, bom: bool = False, decimals: int | None = 2) -> None:
        """Write ``df`` as the export CSV ``name`` (quoted where needed, ``true``/``false``).

        Floats are money in these files, hence two decimals by default.
        """
        df.write_csv(self.out / name, include_bom=bom, float_precision=decimals)
        self.files[name] = df.height

    def crm(self, obj: str, df: pl.DataFrame, *, bom: bool = False) -> None:
        """Write the Salesforce export ``crm/<obj>.csv`` and count its deleted rows."""
        self.csv(f"crm/{obj}.csv", df, bom=bom)
        if "IsDeleted" in df.columns:
            self.deleted[obj] = int(df["IsDeleted"].sum())

    def parquet(self, name: str, df: pl.DataFrame) -> None:
        """Write ``df`` as the Parquet file ``name`` (zstd, with statistics)."""
        df.write_parquet(self.out / name, compression="zstd", statistics=True)
        self.files[name] = df.height

    def truth(self, truth: dict[str, Any]) -> None:
        """Write ``truth.json``, indented."""
        (self.out / "truth.json").write_bytes(orjson.dumps(truth, option=orjson.OPT_INDENT_2) + b"\n")
        self.files["truth.json"] = 1
