"""Training the shapes world's shipped weights: ``python -m training train --out DIR`` (and ``train-families``).

Kept out of the ``harness`` package: a run only loads the weights (``harness/world/assets.py``); nothing here is
imported at run time or installed with the harness.
"""
