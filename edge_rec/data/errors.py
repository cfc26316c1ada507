"""The error raised for interaction files that cannot be read as the expected format."""

from __future__ import annotations


class DataFormatError(ValueError):
    """An interaction file is empty, malformed or in another format.

    The message names the file, the 1-based line number when there is one, what was expected
    and how to fix it (choose a format, or skip bad lines).
    """
