"""What every command's output shares: exit codes, the 80-column width, colour, wrapping.

Exit codes are a contract: 0 fine, 1 problems found (for commands that check), 2 usage.
Text output fits 80 columns; colour when stdout is a terminal or ``FORCE_COLOR`` is set, never
when ``NO_COLOR`` is set (nor with ``--json``).
"""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
from typing import Any, Optional, TextIO

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2

WIDTH = 80

#: The "exit status" block of every epilog; each command names what 0 and 1 mean for it.
EXIT_CODES = """\
exit status:
  0  {ok}
  1  {problems}
  2  usage error (unknown option, bad argument)
"""

_STYLES = {
    "ok": "32",
    "warn": "33",
    "fail": "1;31",
    "info": "2",
    "bold": "1",
}


def colour_enabled(stream: TextIO, environ: Optional[dict[str, str]] = None) -> bool:
    """Colour on a terminal, or anywhere when ``FORCE_COLOR`` is set (force-color.org: any
    non-empty value, so CI logs that render ANSI get it); never when ``NO_COLOR`` is set
    (no-color.org): a user's refusal wins over a blanket forcing."""
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR", ""):
        return False
    if env.get("FORCE_COLOR", ""):
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def paint(text: str, style: str, enabled: bool) -> str:
    code = _STYLES.get(style)
    return f"\033[{code}m{text}\033[0m" if enabled and code else text


def wrap(text: str, indent: int, first: str = "", width: int = WIDTH) -> list[str]:
    """``first`` + ``text`` wrapped at ``width``; continuation lines indented by ``indent``.
    Long words (paths) are never broken."""
    lines = textwrap.wrap(
        text,
        width=width,
        initial_indent=first,
        subsequent_indent=" " * indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return lines or [first.rstrip()]


_COLUMN = re.compile(r"^(\s+\S+(?: \S+)*?\s{2,})\S")


def reflow(text: str, width: int = WIDTH - 1) -> str:
    """Help text fitted to ``width``: runs of plain lines become filled paragraphs; indented
    lines (tables, examples) are kept, and wrapped under their second column when too long."""
    out: list[str] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            out.extend(textwrap.wrap(" ".join(paragraph), width, break_on_hyphens=False))
            paragraph.clear()

    for line in text.split("\n"):
        header = line.endswith(":") and len(line) < 30
        if line and not line[0].isspace() and not header:
            paragraph.append(line.strip())
            continue
        flush()
        if len(line) <= width:
            out.append(line)
            continue
        column = _COLUMN.match(line)
        indent = len(column.group(1)) if column else len(line) - len(line.lstrip()) + 2
        out.extend(
            textwrap.wrap(line, width, subsequent_indent=" " * indent, break_on_hyphens=False)
        )
    flush()
    return "\n".join(out)


def dump_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
