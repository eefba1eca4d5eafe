"""The command-line options several commands share, declared once; each command words its own help.

    >>> import click

from beanstrain.backends import BACKENDS
    >>> @click.command()
    ... @out_option()
    ... @json_option("Print one JSON list.")
    ... def listing(out, as_json):
    ...     click.echo(f"{out} {as_json}")
    >>> from click.testing import CliRunner
    >>> CliRunner().invoke(listing, ["--json"]).output
    'runs True\\n'
"""

from __future__ import annotations

from pathlib import Path

import click

from beanstrain.backends import BACKENDS

RUNS_HELP = "Folder that holds the run folders."


def out_option(help: str = RUNS_HELP):
    """--out: the folder of run folders (`runs` unless given)."""
    return click.option("--out", default="runs", show_default=True, type=click.Path(path_type=Path), help=help)


def json_option(help: str = "Print one JSON object on stdout."):
    """--json: machine-readable output instead of text."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def data_option(help: str):
    """--data: MNIST-format data, a .npz or a folder of the four IDX files."""
    return click.option("--data", "data_path", help=help)


def quiet_option(help: str):
    """--quiet: no progress display."""
    return click.option("--quiet", is_flag=True, help=help)


def backend_option():
    """--backend: the Keras backend the command builds or loads networks on."""
    return click.option("--backend", type=click.Choice(tuple(BACKENDS)),
                        help="Keras backend: "
                        + "; ".join(f"{name}: {entry.summary}" for name, entry in BACKENDS.items())
                        + ". Default: KERAS_BACKEND, else tensorflow.")
