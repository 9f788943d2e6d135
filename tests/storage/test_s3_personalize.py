"""personalize with ``--out s3://...``: adapters, training records and checkpoints go through the
storage seam, a killed identity resumes from its checkpoint on S3 to the adapter a local build
trains, and an adapter on S3 loads as its local copy does (what synthesize does with it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nearid_data.engine.storage import ObjectPath, filesystem
from nearid_data.personalize import dreambooth
from nearid_data.personalize.text2image import TextToImage
from tests.personalize.helpers import adapters, build, pipeline
from tests.personalize.tiny_text2image import save_tiny_sd
from tests.storage.test_s3_build import remote_files


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_sd(tmp_path_factory.mktemp("models") / "sd")


@pytest.mark.slow
def test_a_killed_identity_resumes_from_its_checkpoint_on_s3_to_the_local_adapter(
    bucket: str, tmp_path: Path, tiny_sd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = tmp_path / "local"
    build(pipeline(tiny_sd, n_identities=1), out=local)
    expected = adapters(local)
    (name,) = expected

    save = dreambooth._save_checkpoint

    def save_then_die(*args: object, **kwargs: object) -> None:
        save(*args, **kwargs)  # type: ignore[arg-type]
        raise RuntimeError("killed")  # halfway: the checkpoint is on S3

    out = ObjectPath.from_url(f"{bucket}/personalize")
    checkpoints = out / "personalize" / "checkpoints"
    monkeypatch.setattr(dreambooth, "_save_checkpoint", save_then_die)
    with pytest.raises(Exception, match="killed"):
        build(pipeline(tiny_sd, n_identities=1), out=out)
    assert (checkpoints / f"{name}.pt").exists()
    monkeypatch.setattr(dreambooth, "_save_checkpoint", save)

    build(pipeline(tiny_sd, n_identities=1), out=out)
    remote = remote_files(str(out))
    adapter = f"personalize/adapters/{name}"
    assert remote[f"{adapter}/pytorch_lora_weights.safetensors"] == expected[name]
    assert json.loads(remote[f"{adapter}/training.json"])["resumed_from"] == 2
    assert not filesystem("s3").find(checkpoints.path)

    model = TextToImage(str(tiny_sd))

    def adapted(directory: Path | ObjectPath) -> np.ndarray:
        model.load_adapter(directory, "x")
        try:
            return model.generate(["a photo"], [1], steps=2, guidance=5.0, resolution=32)[0]
        finally:
            model.unload_adapter()

    assert np.array_equal(adapted(out / adapter), adapted(local / adapter))
