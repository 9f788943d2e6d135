import pytest

from nearid_data.engine.names import check_safe_name
from nearid_data.errors import NearidError


@pytest.mark.parametrize("name", ["train", "a/b", "shard-000001", "v1.2_x", "0"])
def test_safe_names_pass_unchanged(name: str) -> None:
    assert check_safe_name(name, "unit name") == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "..",
        "../x",
        "a/../b",
        "/abs",
        "a//b",
        "a/",
        ".hidden",
        "a\\b",
        "c:x",
        "a b",
        "x\n",
        "-x",
        "a" * 201,
    ],
)
def test_unsafe_names_are_refused_naming_the_field(name: str) -> None:
    with pytest.raises(NearidError, match="split name"):
        check_safe_name(name, "split name")
