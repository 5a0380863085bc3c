"""UserError: a problem the user can fix. The CLI and the pages show its message as one line."""


class UserError(Exception):
    """Base of every error whose message is written for the user (no traceback needed)."""
