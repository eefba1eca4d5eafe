"""The three kinds of task a dataset poses; the task decides the network's output layer, the default
loss and whether accuracy means anything.

    >>> TASKS
    ('regression', 'binary', 'multiclass')

A module of its own, with no imports, so the command line can name losses by
task without importing NumPy.
"""

REGRESSION, BINARY, MULTICLASS = "regression", "binary", "multiclass"
TASKS = (REGRESSION, BINARY, MULTICLASS)
