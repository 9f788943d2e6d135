"""personalize: adapters per identity, resume mid-identity, determinism, rejections."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nearid_data.config import PipelineConfig
from nearid_data.engine.manifest import read_summary
from nearid_data.engine.tario import read_samples
from nearid_data.errors import NearidError
from nearid_data.personalize import dreambooth
from nearid_data.personalize.text2image import TextToImage
from tests.personalize.helpers import adapters, build, pipeline, rows


@pytest.mark.slow
def test_killed_identity_resumes_from_its_checkpoint_to_the_same_adapter(
    tmp_path: Path, tiny_sd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = tmp_path / "reference"
    build(pipeline(tiny_sd), out=reference)
    expected = adapters(reference)
    assert len(expected) == 2

    saves: list[int] = []
    save = dreambooth._save_checkpoint

    def save_then_die(*args: object, **kwargs: object) -> None:
        save(*args, **kwargs)  # type: ignore[arg-type]
        saves.append(1)
        if len(saves) == 2:  # the second identity, halfway: its checkpoint is on disk
            raise RuntimeError("killed")

    monkeypatch.setattr(dreambooth, "_save_checkpoint", save_then_die)
    killed = tmp_path / "killed"
    with pytest.raises(Exception, match="killed"):
        build(pipeline(tiny_sd), out=killed)
    assert len(adapters(killed)) == 1
    assert list((killed / "personalize/checkpoints").glob("*.pt"))
    monkeypatch.setattr(dreambooth, "_save_checkpoint", save)

    summaries = build(pipeline(tiny_sd), out=killed)
    assert summaries[-1].units_skipped == 1  # the finished identity is not retrained
    assert adapters(killed) == expected  # same seed, same bytes, resumed or not
    resumed = [
        json.loads(p.read_text())["resumed_from"]
        for p in sorted((killed / "personalize/adapters").glob("*/training.json"))
    ]
    assert sorted(resumed) == [0, 2]
    assert not list((killed / "personalize/checkpoints").glob("*.pt"))


def test_adapter_record_and_plain_diffusers_loading(tmp_path: Path, tiny_sd: Path) -> None:
    out = tmp_path / "b"
    build(pipeline(tiny_sd, n_identities=1), out=out)
    (directory,) = (out / "personalize/adapters").iterdir()
    training = json.loads((directory / "training.json").read_text())
    assert len(training["losses"]) == 4 and all(np.isfinite(training["losses"]))
    assert training["instance_prompt"].startswith("a photo of sks ")
    assert training["class_prompt"] == f"A photo of {training['category']}"
    assert training["settings"]["learning_rate"] == 1e-2 and isinstance(training["seed"], int)
    category = training["category"]
    assert len(list((out / f"personalize/class_images/{category}").glob("*.png"))) == 2
    kept = [r for r in rows(out / "personalize") if r.status == "kept"]
    assert len(kept) == 3 and all("final_loss" in r.qa for r in kept)

    model = TextToImage(str(tiny_sd))
    prompt = training["instance_prompt"]
    plain = model.generate([prompt], [1], steps=2, guidance=5.0, resolution=32)[0]
    model.load_adapter(directory, "x")
    adapted = model.generate([prompt], [1], steps=2, guidance=5.0, resolution=32)[0]
    model.unload_adapter()
    again = model.generate([prompt], [1], steps=2, guidance=5.0, resolution=32)[0]
    assert not np.array_equal(plain, adapted)
    assert np.array_equal(plain, again)


def test_too_few_views_and_divergence_are_rejections_not_failures(
    tmp_path: Path, tiny_sd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(pipeline(tiny_sd, n_identities=1, min_views=4), out=tmp_path / "few")
    few = rows(tmp_path / "few/personalize")
    assert {r.reason for r in few} == {"too_few_views"} and len(few) == 3

    import torch

    monkeypatch.setattr(
        dreambooth, "diffusion_loss", lambda p, t: torch.tensor(float("nan")) + p.sum() * 0
    )
    build(pipeline(tiny_sd, n_identities=1), out=tmp_path / "nan")
    diverged = rows(tmp_path / "nan/personalize")
    assert {r.reason for r in diverged} == {"diverged"} and len(diverged) == 3
    assert all(r.qa["diverged_at_step"] == 0 for r in diverged)
    assert "nan" in (diverged[0].detail or "")
    assert read_summary(tmp_path / "nan/personalize") is not None
    assert not list((tmp_path / "nan/personalize").glob("adapters/*"))


def test_missing_model_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NearidError, match="could not be loaded"):
        TextToImage(str(tmp_path / "no-such-model"))


@pytest.mark.parametrize("name", ["pods-synthetic", "photos-synthetic"])
def test_shipped_pipelines_validate(name: str) -> None:
    root = Path(__file__).resolve().parents[2]
    pipeline = PipelineConfig.load(root / f"pipelines/{name}.yaml")
    assert list(pipeline.stages)[-3:] == ["personalize", "synthesize", "export-synthetic"]


def test_class_images_are_generated_once_per_category_and_shared(
    tmp_path: Path, tiny_sd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nearid_data.personalize.class_images import class_images

    model = TextToImage(str(tiny_sd))
    calls: list[int] = []
    generate = model.generate
    monkeypatch.setattr(
        model, "generate", lambda p, s, **k: calls.append(len(p)) or generate(p, s, **k)
    )
    settings = {
        "count": 3,
        "seed": 1,
        "steps": 2,
        "guidance": 7.5,
        "resolution": 32,
        "batch_size": 2,
    }
    first = class_images(model, tmp_path / "mug", prompt="A photo of mug", **settings)
    second = class_images(model, tmp_path / "mug", prompt="A photo of mug", **settings)
    assert calls == [2, 1]  # the second identity of the category reads the shared set
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    class_images(model, tmp_path / "mug", prompt="A photo of a mug", **settings)
    assert calls == [2, 1, 2, 1]  # another prompt: regenerated
    record = json.loads((tmp_path / "mug/class_images.json").read_text())
    assert record["prompt"] == "A photo of a mug" and len(record["seeds"]) == 3


def test_full_fine_tuning_saves_a_unet_and_leaves_the_base_model_as_it_was(
    tmp_path: Path, tiny_sd: Path
) -> None:
    raw = pipeline(tiny_sd, n_identities=1, synthesize=True, method="full").model_dump(mode="json")
    raw["stages"]["synthesize"] |= {"positives": 1, "negatives": 1, "cut_paste": 0}
    out = tmp_path / "full"
    build(PipelineConfig.from_dict(raw), out=out)
    (directory,) = (out / "personalize/adapters").iterdir()
    assert (directory / "unet/config.json").is_file()
    assert json.loads((directory / "training.json").read_text())["settings"]["method"] == "full"

    model = TextToImage(str(tiny_sd))
    kwargs = {"steps": 2, "guidance": 5.0, "resolution": 32}
    before = model.generate(["a photo of sks mug"], [2], **kwargs)[0]
    model.load_adapter(directory, "x")
    tuned = model.generate(["a photo of sks mug"], [2], **kwargs)[0]
    model.unload_adapter()
    assert not np.array_equal(before, tuned)
    assert np.array_equal(before, model.generate(["a photo of sks mug"], [2], **kwargs)[0])

    samples = [s for tar in sorted((out / "synthesize").rglob("*.tar")) for s in read_samples(tar)]
    (positive,) = [s for s in samples if s["json"]["kind"] == "synthetic_positive"]
    assert positive["json"]["generation"]["adapter"]["path"].endswith(directory.name)
