"""The one exception type of the datasets layer.

Every failure a user can cause or meet (a dead mirror, a corrupted file, a full disk, a folder in
the wrong layout) is raised as `DataError` with a message that names the file or URL and says what
was expected. The command line prints the message without a traceback; anything else that escapes
is a bug and keeps its traceback.
"""

from __future__ import annotations


class DataError(Exception):
    """An expected, user-facing failure: the message is the whole report."""


class DownloadInterrupted(DataError):
    """The transfer stopped part-way; the partial file was kept so the next run can resume it."""
