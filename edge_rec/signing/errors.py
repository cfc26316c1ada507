"""The publisher's error: a user mistake or a missing key, with what to do about it."""


class SigningError(ValueError):
    """Publishing or a key operation cannot proceed; the message names the file or role and the fix."""
