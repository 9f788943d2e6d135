"""Safe names: the one rule for any user- or config-supplied name that becomes part of a path.

A safe name is one or more segments joined by ``/``; each segment starts with a letter or digit and
continues with letters, digits, ``.``, ``_`` or ``-``. That excludes ``..``, empty segments, absolute
paths, backslashes, drive letters and control characters, so a safe name joined under a folder can
never resolve outside it.
"""

from __future__ import annotations

import re

from nearid_data.errors import NearidError

_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_NAME_LENGTH = 200


def check_safe_name(value: str, what: str) -> str:
    """Return ``value`` unchanged if it is a safe name, else raise NearidError naming ``what``.

    ``what`` says where the name came from (``"split name"``, ``"unit name"``), for the message.
    """
    if not isinstance(value, str) or not value:
        raise NearidError(f"{what} must be a non-empty string, got {value!r}")
    if len(value) > MAX_NAME_LENGTH:
        raise NearidError(f"{what} {value[:40]!r}... is longer than {MAX_NAME_LENGTH} characters")
    for segment in value.split("/"):
        if not _SEGMENT.fullmatch(segment):
            raise NearidError(
                f"{what} {value!r} is not a safe name: use segments of letters, digits, '.', '_' or '-'"
                " that start with a letter or digit, joined by '/' (no '..', no leading '/')"
            )
    return value
