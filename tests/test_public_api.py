import types

import training_roi


def test_all_is_exactly_the_public_names():
    public = {
        n for n in dir(training_roi)
        if not n.startswith("_") and n != "annotations" and not isinstance(getattr(training_roi, n), types.ModuleType)
    }
    assert set(training_roi.__all__) - {"__version__"} == public
    assert training_roi.__all__ == sorted(training_roi.__all__)


def test_the_quick_start_runs_as_written(tmp_path, monkeypatch):
    """The facade's docstring walks the whole flow; it must run as written (doctest), in an empty folder."""
    import doctest

    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(training_roi, optionflags=doctest.ELLIPSIS, raise_on_error=False, verbose=False)
    assert result.attempted >= 8 and result.failed == 0


def test_help_shows_the_quick_start():
    import pydoc

    text = pydoc.render_doc(training_roi, renderer=pydoc.plaintext)
    assert "roi.evaluate(con, study)" in text and "roi.ingest_folder" in text


def test_every_name_a_stage_package_exports_exists():
    # A name in __all__ that the package does not import makes `from … import *` fail.
    import importlib

    for stage in ("ingest", "linking", "measure", "isolate", "attribute", "value", "present", "evaluation", "study",
                  "warehouse"):
        module = importlib.import_module(f"training_roi.{stage}")
        missing = [n for n in getattr(module, "__all__", ()) if not hasattr(module, n)]
        assert not missing, f"training_roi.{stage}.__all__ names {missing}, which it does not import"
