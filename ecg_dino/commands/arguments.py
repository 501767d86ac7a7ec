"""Command lines generated from typed options dataclasses, so each flag is declared once, and error reporting.

A field becomes ``--kebab-name`` (or a positional argument), with the field's type, its default, and its attribute
docstring as the help (read with ``docstring_parser``, as jsonargparse reads init-arg docs). ``tuple[X, ...]`` takes
several values (``--fractions 0.01 0.1``); ``bool`` is a switch (``--patches``; ``--no-robustness`` when the default
is True); ``Literal`` or ``field(metadata={"choices": ...})`` gives the choices; ``X | None`` reads ``''`` as None;
``metadata={"parse": fn}`` reads the text with ``fn``; a dataclass-typed field is a group of flags (shared options
declared once, e.g. ``EmbedOptions``). jsonargparse's dataclass arguments (LightningCLI's) are not used for the
tools: in 4.53 they name flags with underscores, take lists as JSON (``[0.01,0.1]``), booleans as ``--robustness
false`` and ``''`` as ``Path('.')``, which would change every existing command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import types
import typing
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import docstring_parser

from datamodules.record import BadRecordError
from ecg_dino.checkpoint import CheckpointError
from ecg_dino.probes.headline import headline

Options = TypeVar("Options")


def fail(prog: str, error: Exception) -> int:
    """Print ``<prog>: error: <message>`` to stderr; the exit code of a failed command."""
    print(f"{prog}: error: {error}", file=sys.stderr)
    return 2


def build_parser(
    options: type, prog: str, example: str, description: str | None = None, positional: tuple[str, ...] = ()
) -> argparse.ArgumentParser:
    """A parser with one argument per field of ``options`` (nested dataclass fields as groups) and the example."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(description or options.__doc__ or "").replace("``", ""),
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_fields(parser, options, positional)
    return parser


def parse(
    options: type[Options],
    argv: list[str] | None,
    prog: str,
    example: str,
    description: str | None = None,
    positional: tuple[str, ...] = (),
) -> Options:
    """The command line as an ``options`` instance; a value the options reject (``ValueError``) is a usage error."""
    parser = build_parser(options, prog, example, description, positional)
    values = vars(parser.parse_args(argv))
    try:
        return _construct(options, values)
    except ValueError as e:
        parser.error(str(e))


def run_probe(prog: str, probe: Callable[[Options], Path], opts: Options) -> int:
    """Run one probe, print its headline table and where its report is; 2 on an error naming the file."""
    try:
        out = probe(opts)
    except (CheckpointError, FileNotFoundError, BadRecordError, ValueError) as e:
        return fail(prog, e)
    print(headline(json.loads((out / "report.json").read_text())))
    print(f"\nreport: {out / 'report.md'} (numbers in {out / 'report.json'})")
    return 0


def _add_fields(container: Any, options: type, positional: tuple[str, ...]) -> None:
    """One argument per field; a dataclass-typed field adds an argument group of its own fields."""
    hints, docs = typing.get_type_hints(options), _field_docs(options)
    fields = dataclasses.fields(options)
    for f in sorted(fields, key=lambda f: _default(f) is not dataclasses.MISSING):  # required ones first
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            group = container.add_argument_group(hint.__doc__.split(";")[0].split(".")[0].lower())
            _add_fields(group, hint, positional)
            continue
        _add_field(container, f, hint, docs.get(f.name, ""), f.name in positional)


def _add_field(container: Any, f: dataclasses.Field, hint: Any, doc: str, positional: bool) -> None:
    """The argument of one field: name, conversion, choices, number of values, default and help."""
    default = _default(f)
    required = default is dataclasses.MISSING
    text = " ".join(doc.split()).replace("%", "%%")
    if hint is bool:
        flag = f"--no-{_kebab(f.name)}" if default else f"--{_kebab(f.name)}"
        action = "store_false" if default else "store_true"
        container.add_argument(
            flag, dest=f.name, action=action, default=default, help=f"without {text}" if default else text
        )
        return
    base, optional = _unoptional(hint)
    many = typing.get_origin(base) in (tuple, list) and "parse" not in f.metadata
    element = typing.get_args(base)[0] if many else base
    choices = f.metadata.get("choices")
    if typing.get_origin(element) is Literal:
        choices, element = typing.get_args(element), type(typing.get_args(element)[0])
    convert = f.metadata.get("parse") or element
    shown = default not in (dataclasses.MISSING, None, ()) and "default" not in text
    help_text = f"{text} (default: {' '.join(map(str, default)) if many else default})" if shown else text
    kwargs: dict[str, Any] = {"type": _nullable(convert) if optional else convert, "help": help_text}
    if choices is not None:
        kwargs["choices"] = tuple(choices)
    if many:
        kwargs["nargs"] = "+" if required or default else "*"
    if positional:
        container.add_argument(f.name, **kwargs)
        return
    if not required:
        kwargs["default"] = list(default) if many else default
    container.add_argument(f"--{_kebab(f.name)}", dest=f.name, required=required, **kwargs)


def _construct(options: type[Options], values: dict[str, Any]) -> Options:
    """``options`` from parsed values: nested dataclasses built from their own fields, lists back to tuples."""
    hints = typing.get_type_hints(options)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(options):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            kwargs[f.name] = _construct(hint, values)
        else:
            value = values[f.name]
            base, _ = _unoptional(hint)
            kwargs[f.name] = tuple(value) if typing.get_origin(base) is tuple and value is not None else value
    return options(**kwargs)


@cache
def _field_docs(options: type) -> dict[str, str]:
    """Attribute docstrings of ``options`` and its dataclass bases (a subclass's own text wins)."""
    docs: dict[str, str] = {}
    for cls in reversed(options.__mro__[:-1]):
        if dataclasses.is_dataclass(cls):
            docs.update({p.arg_name: p.description or "" for p in docstring_parser.parse_from_object(cls).params})
    return docs


def _default(f: dataclasses.Field) -> Any:
    """The field's default (from its factory too), or ``MISSING``."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def _unoptional(hint: Any) -> tuple[Any, bool]:
    """(``X``, True) for ``X | None``, else (hint, False)."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(args) < len(typing.get_args(hint)):
            return args[0], True
    return hint, False


def _nullable(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """``convert``, with the empty string read as None (``--cache-dir ''`` disables the cache)."""

    def read(text: str) -> Any:
        return convert(text) if text else None

    read.__name__ = getattr(convert, "__name__", "value")  # argparse names the type in its error messages
    return read


def _kebab(name: str) -> str:
    return name.replace("_", "-")
