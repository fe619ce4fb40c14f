import training_roi


def test_all_is_exactly_the_public_names():
    public = {n for n in dir(training_roi) if not n.startswith("_") and n not in {"annotations"}}
    modules = {"errors", "ingest", "warehouse", "present", "cli", "simulate"}
    assert set(training_roi.__all__) - {"__version__"} == public - modules
    assert training_roi.__all__ == sorted(training_roi.__all__)
