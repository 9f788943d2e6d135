"""The shared optional-dependency import: one error naming the extra that provides the package."""

from __future__ import annotations

import pytest

from nearid_data.errors import NearidError
from nearid_data.optional import import_optional


def test_import_optional_returns_the_module() -> None:
    assert import_optional("json", extra="hub").dumps([1]) == "[1]"


def test_import_optional_names_the_user_and_the_extra() -> None:
    with pytest.raises(
        NearidError, match=r"reading parquet needs the Python package 'no_such_pkg_x'"
    ) as error:
        import_optional("no_such_pkg_x", extra="hub", needed_for="reading parquet")
    assert "pip install 'nearid-data[hub]'" in str(error.value)


def test_import_optional_defaults_to_a_backend() -> None:
    with pytest.raises(NearidError, match=r"^this backend needs .*nearid-data\[models\]"):
        import_optional("no_such_pkg_x.sub", extra="models")
