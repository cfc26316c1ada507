"""The command-line options shared by several commands, each written once so it behaves the same
everywhere: same name, same values, same help, same error for a wrong value.

numpy and click only: importing this module never imports TensorFlow.
"""

from __future__ import annotations

import codecs
import logging
from pathlib import Path
from typing import Any

import click

from edge_rec.data import FORMATS, PRESETS, DataFormatError
from edge_rec.data.titles import load_titles

#: ``--data-format`` values: auto-detect or one of the loaders' formats.
DATA_FORMAT_CHOICES = ("auto", *FORMATS)


class ChoiceOrFile(click.ParamType):
    """One of ``choices`` or an existing file with one of ``suffixes``; a wrong value lists both."""

    name = "choice-or-file"

    def __init__(self, choices: tuple[str, ...], suffixes: tuple[str, ...], what: str) -> None:
        self.choices, self.suffixes, self.what = choices, suffixes, what

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return f"[{'|'.join(self.choices)}|FILE{'|'.join(self.suffixes)}]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if text in self.choices or (text.endswith(self.suffixes) and Path(text).is_file()):
            return text
        self.fail(f"{text!r} is neither a built-in {self.what} ({', '.join(self.choices)}) nor an "
                  f"existing {'/'.join(self.suffixes)} file", param, ctx)
        raise AssertionError  # fail() raises


def _check_data(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--data``: an existing file or a synthetic preset name (a wrong name lists the presets)."""
    if value is None or value in PRESETS or Path(value).exists():
        return value
    raise click.BadParameter(f"{value!r}: no such file, and not a synthetic preset "
                             f"(presets: {', '.join(PRESETS)})")


def _decode_delimiter(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """``--delimiter``: one character; backslash escapes such as ``'\\t'`` are decoded."""
    decoded = codecs.decode(value, "unicode_escape") if "\\" in value else value
    if len(decoded) != 1:
        raise click.BadParameter(f"expected one character (e.g. ',' or '\\t'), got {value!r}")
    return decoded


def data_option(help_text: str = "Interaction log to train on: a file, or a synthetic preset "
                                 f"({', '.join(PRESETS)}); default: the config's [data] source.",
                *, required: bool = False):
    """``--data PATH|PRESET``."""
    return click.option("--data", "data_path", default=None, required=required, callback=_check_data,
                        help=help_text)


def data_format_option(default: str | None = None, *aliases: str):
    """``--data-format`` (a fixed choice everywhere; ``aliases`` are older names of the same option);
    ``None`` keeps the config's [data] format."""
    return click.option("--data-format", *aliases, "data_format", type=click.Choice(DATA_FORMAT_CHOICES),
                        default=default,
                        show_default=default is not None,
                        help="Format of the interaction log (auto detects it from the file).")


def skip_bad_lines_option():
    """``--skip-bad-lines``: skip and count malformed lines instead of stopping."""
    return click.option("--skip-bad-lines", is_flag=True,
                        help="Skip and count malformed lines of the log instead of stopping.")


def delimiter_option():
    """``--delimiter``: the csv field separator; ``'\\t'`` and other escapes are accepted."""
    return click.option("--delimiter", default=",", show_default=True, callback=_decode_delimiter,
                        help="csv: field delimiter (one character; '\\t' for tab).")


def seed_option():
    """``--seed N``: overrides the config's seed."""
    return click.option("--seed", type=int, default=None, help="Random seed (overrides the config's seed).")


def _quiet(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        logging.getLogger().setLevel(logging.WARNING)
    return value


def quiet_option():
    """``--quiet``: no progress bars, progress lines or info logs (all of them go to stderr)."""
    return click.option("--quiet", is_flag=True, callback=_quiet,
                        help="No progress bars, progress lines or info logs on stderr.")


def _load_titles(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, str] | None:
    if value is None:
        return None
    try:
        return load_titles(value)
    except DataFormatError as exc:
        raise click.BadParameter(str(exc)) from None


def items_option():
    """``--items PATH``: item titles for the bundle's items.tsv, as a ``{item_id: title}`` dict."""
    return click.option("--items", "titles", type=click.Path(exists=True, dir_okay=False), default=None,
                        callback=_load_titles,
                        help="Item titles for items.tsv: MovieLens u.item / movies.dat / movies.csv, or a "
                             "CSV with item_id,title.")


def overwrite_option():
    """``--overwrite``: allow ``--out`` to be a folder that already holds files."""
    return click.option("--overwrite", is_flag=True,
                        help="Write into --out even when it already holds files (they may be replaced).")


def refuse_non_empty(path: str | Path, overwrite: bool, option: str = "--out") -> None:
    """Stop (exit 1) when ``path`` is a folder that already holds files and ``overwrite`` is off."""
    path = Path(path)
    if not overwrite and path.is_dir() and any(path.iterdir()):
        raise click.ClickException(f"{option} {path}: the folder is not empty; choose a new folder or "
                                   "pass --overwrite to write into it")
    if path.exists() and not path.is_dir():
        raise click.ClickException(f"{option} {path}: exists and is not a folder")


def json_option(what: str = "the result"):
    """``--json``: a flag everywhere; machine output on stdout, everything else on stderr."""
    return click.option("--json", "as_json", is_flag=True, help=f"Print {what} as JSON on stdout.")


def config_preset_option():
    """``--preset NAME``: a ``[preset.NAME]`` of the config or a built-in one (a wrong name lists
    the valid ones; they depend on the config file, so they are checked when it is loaded).
    Not to be confused with a device profile (``benchmark --profile``: device budgets)."""
    from edge_rec.config import BUILTIN_PRESETS

    return click.option("--preset", default=None,
                        help=f"A [preset.NAME] of the config, or built-in: {', '.join(BUILTIN_PRESETS)}.")


def item_features_option():
    """``--item-features FILE``: a CSV of item features (``data.item_features``)."""
    return click.option("--item-features", "item_features", type=click.Path(dir_okay=False), default=None,
                        help="CSV of item features (item_id plus categorical, numeric or text columns): "
                             "items are represented by their id and their features.")


def data_overrides(*, data_format: str | None, skip_bad_lines: bool, seed: int | None,
                   item_features: str | None = None) -> dict[str, Any]:
    """The config overrides of ``--data-format``, ``--skip-bad-lines``, ``--item-features`` and ``--seed``."""
    overrides: dict[str, Any] = {}
    data: dict[str, Any] = {}
    if data_format is not None:
        data["format"] = data_format
    if item_features is not None:
        data["item_features"] = item_features
    if skip_bad_lines:
        data["on_bad_line"] = "skip"
    if data:
        overrides["data"] = data
    if seed is not None:
        overrides["seed"] = seed
    return overrides


def loss_weight_options(command):
    """``--<term>-weight W`` for every registered distillation loss term
    (:data:`edge_rec.distill.loss_terms.LOSS_TERMS`), collected into the command's
    ``loss_weights`` argument as ``{weight key: W}`` (only the flags given)."""
    import functools

    from edge_rec.distill.loss_terms import LOSS_TERMS

    dests = {f"{name}_weight_flag": term.weight_key for name, term in LOSS_TERMS.items()}

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        given = {key: kwargs.pop(dest) for dest, key in dests.items()}
        return command(*args, loss_weights={k: v for k, v in given.items() if v is not None}, **kwargs)

    for name, term in reversed(list(LOSS_TERMS.items())):
        wrapper = click.option(f"--{name}-weight", f"{name}_weight_flag", type=float, default=None,
                               help=f"{term.help} ([distill] {term.weight_key})")(wrapper)
    return wrapper
