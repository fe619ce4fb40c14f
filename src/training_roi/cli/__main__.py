"""``python -m training_roi.cli``: the ``training-roi`` command without its console script."""

from training_roi.cli import main

main()
