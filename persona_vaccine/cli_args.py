"""What every command line shares: the command's name as the user typed it, both spellings of each flag
(`--api_key` and `--api-key`), and errors about unknown arguments that name the flags but never echo values
(a mistyped `--api-kee SECRET` must not print the secret)."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

SCRIPT = "launch.py"  # the checkout's entry point; the installed one is the console script
CONSOLE_SCRIPT = "persona-vaccine"


def command_name() -> str:
    """The command the user ran: `python launch.py` from a checkout, else `persona-vaccine`."""
    argv0 = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return f"python {SCRIPT}" if argv0 == SCRIPT else CONSOLE_SCRIPT


def prog(subcommand: str = "") -> str:
    """An argparse `prog` for a subcommand: `persona-vaccine serve` or `launch.py serve`."""
    name = command_name().removeprefix("python ")
    return f"{name} {subcommand}".strip()


def flag_spellings(option: str) -> list[str]:
    """`--a_b` -> [`--a_b`, `--a-b`] and `--a-b` -> [`--a-b`, `--a_b`]; other options as they are."""
    if not option.startswith("--") or len(option) < 3:
        return [option]
    name = option[2:]
    other = name.replace("_", "-") if "_" in name else name.replace("-", "_")
    return [option] if other == name else [option, f"--{other}"]


def field_name(flag: str) -> str:
    """The field a `--flag[=value]` names, in the snake_case spelling (`--api-key=x` -> `api_key`)."""
    return flag.lstrip("-").split("=", 1)[0].replace("-", "_")


def unknown_flags(args: Iterable[str]) -> list[str]:
    """The flags among unrecognised arguments, without any value (`--a=SECRET` -> `--a`)."""
    return [a.split("=", 1)[0] for a in args if a.startswith("-") and len(a) > 1 and not _number(a)]


def closest_flag(flag: str, options: Iterable[str]) -> str | None:
    """The known option closest to a mistyped one (spellings compared with `_` for `-`), or None."""
    known = {field_name(o): o for o in options if o.startswith("--")}
    close = difflib.get_close_matches(field_name(flag), list(known), n=1)
    return f"--{close[0]}" if close else None


def describe_unknown(args: Sequence[str], options: Iterable[str]) -> str:
    """An error about unrecognised arguments that names the flags and the closest valid ones, not values."""
    flags = unknown_flags(args)
    if not flags:
        n = len(args)
        noun, pronoun = ("values", "them") if n > 1 else ("value", "it")
        return f"{n} unexpected {noun} (not shown): no argument of this command takes {pronoun}"
    options = list(options)
    parts = []
    for flag in dict.fromkeys(flags):
        close = closest_flag(flag, options)
        parts.append(flag + (f" (did you mean {'/'.join(flag_spellings(close))}?)" if close else ""))
    return "unrecognized argument" + ("s: " if len(parts) > 1 else ": ") + ", ".join(parts)


def _number(arg: str) -> bool:
    try:
        float(arg)
    except ValueError:
        return False
    return True


class ArgumentParser(argparse.ArgumentParser):
    """argparse with both spellings of every long flag, no prefix matching, and unknown-argument errors
    that never echo values. Subcommand parsers (`add_subparsers`) are of this class too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)  # `--api` must not silently mean `--api_key`
        super().__init__(*args, **kwargs)

    def add_argument(self, *names: Any, **kwargs: Any) -> argparse.Action:
        """`add_argument` that also registers the other spelling of each long flag."""
        spelled = [s for n in names for s in (flag_spellings(n) if isinstance(n, str) else [n])]
        return super().add_argument(*dict.fromkeys(spelled), **kwargs)

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        ns, extras = self.parse_known_args(args, namespace)
        if extras:
            super().error(describe_unknown(extras, self.option_names()))
        return ns

    def option_names(self) -> list[str]:
        """Every option string of this parser and of its subcommand parsers."""
        names: list[str] = []
        for action in self._actions:
            names += action.option_strings
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    names += sub.option_names() if isinstance(sub, ArgumentParser) else []
        return list(dict.fromkeys(names))

    def error(self, message: str) -> NoReturn:
        """Print the usage and the message, exit 2; argparse's own list of unrecognised arguments (which
        holds their values) is replaced by the flags alone."""
        if message.startswith("unrecognized arguments:"):
            message = describe_unknown(message.split(":", 1)[1].split(), self.option_names())
        super().error(message)
