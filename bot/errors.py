"""Errors a user can fix: the command line prints them as one line, without a traceback."""


class UserError(Exception):
    """A wrong setting, argument or file, explained in one line."""
