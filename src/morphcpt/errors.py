"""Errors that reach the user: each says what is wrong and where, so the CLI prints it without a traceback."""


class MorphcptError(Exception):
    """Base for errors the CLI reports as `error: <message>` with exit status 2."""


class ConfigError(MorphcptError):
    """A configuration file is invalid; the message names the file, line and key."""


class RenderError(MorphcptError):
    """A job script could not be rendered (missing value, leftover placeholder, array too large)."""
