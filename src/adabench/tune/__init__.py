"""Equal-budget tuning (``adabench tune``): every row's study on validation, its best on test.

:mod:`.space` reads the declared search spaces, :mod:`.plan` the rows and what they share,
:mod:`.study` the Optuna studies (storage, budget, abandoned trials), :mod:`.runs` composes and
runs each trial as ``train.py`` would, :mod:`.driver` runs a plan, :mod:`.summary` writes the
report folder and :mod:`.cli` is the command.
"""
