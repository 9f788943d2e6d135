"""A write to S3 that fails leaves nothing under its name and raises its own error."""

from __future__ import annotations

import pytest

from nearid_data.engine import storage
from nearid_data.engine.storage import ObjectPath


@pytest.mark.parametrize("size", [100, 12 << 20], ids=["one-block", "multipart"])
def test_a_failed_upload_is_discarded_and_its_error_kept(bucket: str, size: int) -> None:
    target = ObjectPath.from_url(f"{bucket}/atomic/{size}.bin")
    with (
        pytest.raises(RuntimeError, match="the writer failed"),
        storage.atomic_writer(target) as handle,
    ):
        handle.write(b"x" * size)  # past a block, parts are uploaded already
        raise RuntimeError("the writer failed")
    assert not target.exists()
    storage.write_bytes(target, b"whole")
    assert target.read_bytes() == b"whole"
