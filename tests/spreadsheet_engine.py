"""LibreOffice, headless, as a real spreadsheet engine: recompute a workbook and read every sheet back.

LibreOffice does not recompute an .xlsx file's formulas on load by default (it shows the values
cached in the file, which a writer such as XlsxWriter leaves at 0), so it runs with a profile of
its own whose one setting is "always recalculate OOXML files on load". Each sheet is exported as
CSV with raw values (not as displayed). Tests using it are marked ``libreoffice`` and skipped,
saying why, where ``soffice`` is not installed (CI installs Debian's ``libreoffice-calc-nogui``).
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

_PROFILE = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema"
           xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode" oor:op="fuse">
<value>0</value></prop></item>
</oor:items>
"""
# CSV filter: comma, double quote, UTF-8, from line 1, standard cells, raw values, every sheet.
_CSV = 'csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1'


def recalculate(workbook: Path, work: Path, *, recalc: bool = True) -> dict[str, list[list[str]]]:
    """Recompute ``workbook`` in LibreOffice; return each sheet's cells as text, by sheet name.

    With ``recalc=False`` LibreOffice keeps its default for .xlsx files: it shows the values cached
    in the file, as a viewer that does not compute would.
    """
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        pytest.skip("LibreOffice is not installed (apt-get install libreoffice-calc-nogui)")
    profile = work / ("lo-profile" if recalc else "lo-profile-cached")
    (profile / "user").mkdir(parents=True, exist_ok=True)
    if recalc:
        (profile / "user" / "registrymodifications.xcu").write_text(_PROFILE, encoding="utf-8")
    out = work / ("lo-out" if recalc else "lo-out-cached")
    out.mkdir(exist_ok=True)
    done = subprocess.run(
        [soffice, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--norestore",
         "--convert-to", _CSV, "--outdir", str(out), str(workbook)],
        capture_output=True, text=True, timeout=180, check=False,
    )
    sheets = {}
    for path in sorted(out.glob(f"{workbook.stem}-*.csv")):
        with path.open(newline="", encoding="utf-8") as fh:
            sheets[path.stem.removeprefix(f"{workbook.stem}-")] = list(csv.reader(fh))
    assert sheets, f"LibreOffice wrote nothing: {done.stdout} {done.stderr}"
    return sheets


def cell(sheets: dict[str, list[list[str]]], sheet: str, label: str, column: int = 1) -> str:
    """The cell in ``column`` of the row whose first cell is ``label``."""
    for row in sheets[sheet]:
        if row and row[0] == label:
            return row[column]
    raise KeyError(f"{sheet}: no row {label!r}")


def number(text: str) -> Decimal:
    """A cell's value as LibreOffice exports it: plain, or a percentage (which keeps its full precision)."""
    if text.endswith("%"):
        return Decimal(text.removesuffix("%")) / 100
    return Decimal(text)


def value(sheets: dict[str, list[list[str]]], sheet: str, label: str, column: int = 1) -> Decimal:
    """The number in ``column`` of the row whose first cell is ``label``."""
    return number(cell(sheets, sheet, label, column))
