"""Errors the CLI reports in one line and exit code 2: bad input, never a crash."""


class UsageError(Exception):
    """Input zhian cannot use (a file, an entry, an option); the message names the place."""
