"""The errors that the dataset readers and the acquisition raise, shared by every dataset module."""

from __future__ import annotations


class DataFormatError(ValueError):
    """Malformed dataset file; the message names the file and the line."""


class MissingDataError(FileNotFoundError):
    """A manually downloaded dataset is not in place; the message says what to get and where."""


class ArchiveError(RuntimeError):
    """An archive cannot be used (unreadable, unsafe member, unexpected contents); names the archive."""
