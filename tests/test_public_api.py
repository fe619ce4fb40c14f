import types

import training_roi


def test_all_is_exactly_the_public_names():
    public = {
        n for n in dir(training_roi)
        if not n.startswith("_") and n != "annotations" and not isinstance(getattr(training_roi, n), types.ModuleType)
    }
    assert set(training_roi.__all__) - {"__version__"} == public
    assert training_roi.__all__ == sorted(training_roi.__all__)
