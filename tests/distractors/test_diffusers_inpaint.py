"""The diffusers generators through their real loading path, on tiny random-weight pipelines.

What is tested is the logic around the model: full-size outputs for odd sizes, seeds, batching
equal to one-at-a-time, crops mapped back to the right place, prompt embeddings computed once.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from nearid_data.distractors.base import InpaintRequest
from nearid_data.distractors.compositing import unusable_output
from nearid_data.distractors.diffusers_inpaint import DiffusersInpaintGenerator
from nearid_data.distractors.flux_fill import FluxFillGenerator
from nearid_data.distractors.inpaint_geometry import (
    ASPECT_BUCKETS,
    bucket_sizes,
    paint_region,
    resize_mask,
    working_size,
)
from nearid_data.distractors.sd_inpaint import SdInpaintGenerator
from nearid_data.distractors.sdxl_inpaint import SdxlInpaintGenerator
from nearid_data.errors import NearidError, Rejection
from tests import tiny_pipelines
from tests.tiny_models import offline_hub

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

BUILDERS = {
    "sd": (SdInpaintGenerator, tiny_pipelines.save_tiny_sd_inpaint, {}),
    "sdxl": (SdxlInpaintGenerator, tiny_pipelines.save_tiny_sdxl_inpaint, {}),
    "flux": (FluxFillGenerator, tiny_pipelines.save_tiny_flux_fill, {"max_sequence_length": 16}),
}


@pytest.fixture(scope="module", autouse=True)
def isolated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Offline, caches in a temp dir, one torch thread, for the module-scoped models too."""
    before = torch.get_num_threads()
    # Two threads on a busy 2-core machine spin against each other: tiny convs get 10x slower.
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        offline_hub(patch, tmp_path_factory.mktemp("hf"))
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {
        name: build(tmp_path_factory.mktemp(f"tiny_{name}"))
        for name, (_, build, _) in BUILDERS.items()
    }


def make_generator(
    model_dirs: dict[str, Path], name: str, **settings: Any
) -> DiffusersInpaintGenerator:
    cls, _, extra = BUILDERS[name]
    config = {"resolution": 32, "steps": 2, "batch_size": 3, **extra, **settings}
    return cls(cls.Config(model=str(model_dirs[name]), **config))


@pytest.fixture(scope="module")
def generators(model_dirs: dict[str, Path]) -> dict[str, DiffusersInpaintGenerator]:
    return {name: make_generator(model_dirs, name) for name in BUILDERS}


def request(
    height: int, width: int, seed: int, prompt: str = "a red cat", negative: str = ""
) -> InpaintRequest:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    mask = np.zeros((height, width), bool)
    mask[height // 4 : height // 2, width // 3 : 2 * width // 3] = True
    return InpaintRequest(f"k{seed}", image, mask, mask, prompt, negative, seed)


ODD_SIZES = [request(37, 53, 1), request(40, 29, 2, "a cat"), request(37, 53, 3)]


@pytest.mark.parametrize("name", list(BUILDERS))
def test_full_size_rgb_for_sizes_that_are_not_multiples_of_8(
    generators: dict[str, DiffusersInpaintGenerator], name: str
) -> None:
    outputs = generators[name].generate(ODD_SIZES)
    for out, req in zip(outputs, ODD_SIZES, strict=True):
        assert out.dtype == np.uint8 and out.shape == req.image.shape
        assert not np.array_equal(out[req.mask], req.image[req.mask])


@pytest.mark.parametrize("name", list(BUILDERS))
def test_seed_reproduces_and_another_seed_differs(
    generators: dict[str, DiffusersInpaintGenerator], name: str
) -> None:
    generator = generators[name]
    base = request(37, 53, 5)
    again = generator.generate([base])[0]
    other = generator.generate([InpaintRequest(**{**vars(base), "seed": 6})])[0]
    assert np.array_equal(generator.generate([base])[0], again)
    assert np.abs(other.astype(int) - again).max() > 10


@pytest.mark.parametrize("name", list(BUILDERS))
def test_a_batch_paints_what_one_at_a_time_paints(
    generators: dict[str, DiffusersInpaintGenerator], name: str
) -> None:
    generator = generators[name]
    same_size = [request(37, 53, seed, prompt) for seed, prompt in [(1, "a"), (2, "b"), (3, "a")]]
    batched = generator.generate(same_size)
    for req, out in zip(same_size, batched, strict=True):
        # alone, in the last slot of a short batch, and in the first slot: the same bytes
        assert np.array_equal(generator.generate([req])[0], out)
        assert np.array_equal(generator.generate([same_size[1], req])[1], out)
        assert np.array_equal(generator.generate([req, same_size[0]])[0], out)


def test_subject_crop_leaves_everything_outside_the_crop_untouched(
    model_dirs: dict[str, Path],
) -> None:
    generator = make_generator(model_dirs, "sd", crop="subject", crop_padding=0.25)
    req = request(60, 90, 4)
    region = paint_region(req.mask, crop="subject", padding=0.25)
    out = generator.generate([req])[0]
    outside = np.ones(req.mask.shape, bool)
    outside[region.y0 : region.y1, region.x0 : region.x1] = False
    assert outside.any()
    assert np.array_equal(out[outside], req.image[outside])
    assert not np.array_equal(out[req.mask], req.image[req.mask])


class EchoPipeline:
    """Wraps a real pipeline; its call returns the working image, inverted inside the mask."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.sizes: list[tuple[int, int, int]] = []
        self.arguments: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pipe, name)

    def __call__(self, *, image: np.ndarray, mask_image: np.ndarray, **arguments: Any) -> Any:
        self.sizes.append(image.shape[:3])
        self.arguments.append(arguments)
        return SimpleNamespace(images=np.where(mask_image > 0.5, 1.0 - image, image))


@pytest.mark.parametrize("crop", ["full", "subject"])
def test_the_painted_crop_comes_back_to_the_right_place(
    model_dirs: dict[str, Path], crop: str
) -> None:
    generator = make_generator(model_dirs, "sd", crop=crop, resolution=256)
    generator.pipe = EchoPipeline(generator.pipe)
    yy, xx = np.mgrid[:70, :110]
    smooth = np.stack([xx * 2, yy * 3, (xx + yy)], axis=-1).astype(np.uint8)
    mask = np.zeros((70, 110), bool)
    mask[30:50, 60:85] = True
    req = InpaintRequest("smooth", smooth, mask, mask, "p", "", 0)
    out = generator.generate([req])[0].astype(int)
    inner = np.zeros_like(mask)
    inner[33:47, 63:82] = True  # away from the mask edge, where resampling blends
    away = np.ones_like(mask)
    away[27:53, 57:88] = False
    assert np.abs(out[inner] - (255 - smooth[inner].astype(int))).max() <= 3
    assert np.abs(out[away] - smooth[away]).max() <= 3


def test_requests_are_grouped_by_working_size_and_batched(model_dirs: dict[str, Path]) -> None:
    generator = make_generator(model_dirs, "sd", batch_size=2)
    echo = generator.pipe = EchoPipeline(generator.pipe)
    squares = [request(40, 40, s) for s in range(3)]
    wide = [request(30, 90, s) for s in range(3, 5)]
    outputs = generator.generate([squares[0], wide[0], squares[1], wide[1], squares[2]])
    assert [o.shape[:2] for o in outputs] == [(40, 40), (30, 90), (40, 40), (30, 90), (40, 40)]
    # every call is a full batch: the short one is filled up with copies of its last request
    assert echo.sizes == [(2, 32, 32), (2, 32, 32), (2, 16, 48)]
    assert [generator.request_record(r)["slot"] for r in squares + wide] == [0, 1, 0, 0, 1]


def test_prompt_embeddings_are_computed_once_per_distinct_prompt(
    model_dirs: dict[str, Path],
) -> None:
    generator = make_generator(model_dirs, "sd", negative_prompt="blurry")
    forwards: list[int] = []
    generator.pipe.text_encoder.register_forward_hook(lambda *_: forwards.append(1))
    encoded: list[tuple[str, str]] = []
    real_encode = generator.encode
    generator.encode = lambda p, n: encoded.append((p, n)) or real_encode(p, n)  # type: ignore[method-assign]
    prompts = ["a", "b", "a", "a", "b"]
    generator.generate([request(37, 53, i, p) for i, p in enumerate(prompts)])
    generator.generate([request(37, 53, 9, "a", negative="text")])
    assert encoded == [("a", "blurry"), ("b", "blurry"), ("a", "text")]
    # each encoding: the prompt and the negative prompt; the pipeline itself re-encodes nothing
    assert len(forwards) == 2 * len(encoded)


def test_flux_ignores_negative_prompts_and_rejects_one_in_its_config(
    generators: dict[str, DiffusersInpaintGenerator],
) -> None:
    flux = generators["flux"]
    plain = flux.generate([request(37, 53, 1)])[0]
    assert np.array_equal(plain, flux.generate([request(37, 53, 1, negative="text")])[0])
    with pytest.raises(ValueError, match="no negative prompt"):
        FluxFillGenerator.Config(model="x", negative_prompt="text")


def test_scheduler_swap_and_a_clear_error_for_an_incompatible_one(
    model_dirs: dict[str, Path],
) -> None:
    generator = make_generator(model_dirs, "sd", scheduler="UniPCMultistepScheduler")
    assert generator.describe()["scheduler_class"] == "UniPCMultistepScheduler"
    assert generator.describe()["resolved_dtype"] == "float32"
    assert generator.generate([request(24, 24, 1)])[0].shape == (24, 24, 3)
    with pytest.raises(NearidError, match=r"compatible: .*DDIMScheduler"):
        make_generator(model_dirs, "sd", scheduler="FlowMatchEulerDiscreteScheduler")


def test_attention_backends_other_than_sdpa_are_refused_for_unets(
    model_dirs: dict[str, Path],
) -> None:
    with pytest.raises(NearidError, match="always uses torch SDPA"):
        make_generator(model_dirs, "sd", attention="flash")


@pytest.mark.parametrize("model", ["nobody/no-such-inpainting-model", "/nonexistent/local/dir"])
def test_a_missing_model_is_one_clear_error(model: str) -> None:
    with pytest.raises(NearidError, match="could not be loaded"):
        SdInpaintGenerator(SdInpaintGenerator.Config(model=model))


def test_importing_the_generators_does_not_import_torch() -> None:
    code = (
        "import sys, nearid_data.distractors.sd_inpaint, nearid_data.distractors.sdxl_inpaint, "
        "nearid_data.distractors.flux_fill, nearid_data.distractors.presets, "
        "nearid_data.distractors.concepts; "
        "assert 'torch' not in sys.modules and 'diffusers' not in sys.modules"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


@pytest.mark.parametrize(
    ("shape", "box", "expected"),
    [
        ((100, 100), (40, 40, 60, 60), (35, 35, 65, 65)),  # 20 px box, padded 5 px each side
        ((100, 100), (0, 0, 20, 20), (0, 0, 30, 30)),  # pushed back inside at the corner
        ((30, 100), (10, 5, 70, 25), (0, 0, 90, 30)),  # 90 px square clipped to 30 px high
    ],
)
def test_paint_region_is_a_padded_square_around_the_mask_inside_the_image(
    shape: tuple[int, int], box: tuple[int, int, int, int], expected: tuple[int, ...]
) -> None:
    mask = np.zeros(shape, bool)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = True
    region = paint_region(mask, crop="subject", padding=0.25)
    assert (region.x0, region.y0, region.x1, region.y1) == expected
    assert region.cut(mask).sum() == mask.sum()


def test_paint_region_is_the_whole_image_for_full_or_an_empty_mask() -> None:
    mask = np.zeros((20, 30), bool)
    assert paint_region(mask, crop="subject", padding=0.25).cut(mask).shape == (20, 30)
    mask[5, 5] = True
    assert paint_region(mask, crop="full", padding=0.25).cut(mask).shape == (20, 30)


def test_working_size_keeps_area_and_aspect_on_the_grid() -> None:
    assert working_size(1000, 1000, resolution=1024, multiple=64) == (1024, 1024)
    assert working_size(333, 333, resolution=512, multiple=64) == (512, 512)
    assert working_size(1200, 800, resolution=1024, multiple=64) == (1280, 832)
    assert working_size(3000, 10, resolution=512, multiple=64) == (1024, 64)


def test_resized_masks_never_lose_masked_pixels() -> None:
    mask = np.zeros((64, 64), bool)
    mask[10, 33] = True
    assert resize_mask(mask, 8, 8).sum() == 1
    grown = resize_mask(mask, 128, 128)
    assert grown[20:22, 66:68].all()


class BrokenPipeline(EchoPipeline):
    """Its call paints NaN into the first image and a constant grey into the second."""

    def __call__(self, *, image: np.ndarray, mask_image: np.ndarray, **kwargs: Any) -> Any:
        painted = super().__call__(image=image, mask_image=mask_image, **kwargs).images.copy()
        painted[0, 0, 0, 0] = np.nan
        painted[1] = np.where(mask_image[1] > 0.5, 0.5, painted[1])
        return SimpleNamespace(images=painted)


def test_nan_and_flat_model_outputs_come_back_as_rejections(model_dirs: dict[str, Path]) -> None:
    generator = make_generator(model_dirs, "sd")
    generator.pipe = BrokenPipeline(generator.pipe)
    outputs = generator.generate([request(37, 53, 1), request(37, 53, 2), request(37, 53, 3)])
    assert isinstance(outputs[0], Rejection) and outputs[0].reason == "non_finite_output"
    assert isinstance(outputs[1], Rejection) and outputs[1].reason == "flat_output"
    assert isinstance(outputs[2], np.ndarray)


def test_unusable_output_judges_the_raw_float_output_inside_the_region() -> None:
    rng = np.random.default_rng(0)
    region = np.zeros((16, 16), bool)
    region[4:12, 4:12] = True
    painted = rng.random((16, 16, 3)).astype(np.float32)
    assert unusable_output(painted, region) is None
    for value, reason in [(np.nan, "non_finite_output"), (np.inf, "non_finite_output")]:
        broken = painted.copy()
        broken[0, 0, 1] = value
        assert getattr(unusable_output(broken, region), "reason", None) == reason
    flat = painted.copy()
    flat[region] = 0.6 + rng.normal(0, 0.001, (64, 3))
    assert getattr(unusable_output(flat, region), "reason", None) == "flat_output"
    dark = painted.copy()
    dark[region] = rng.random((64, 3)) * 0.02  # noisy but black
    assert getattr(unusable_output(dark, region), "reason", None) == "flat_output"
    assert unusable_output(flat, ~region) is None  # only the painted region counts


@pytest.mark.parametrize(
    ("name", "steps", "strength", "run"),
    [("sdxl", 3, 0.7, 2), ("sd", 4, 0.5, 2), ("flux", 3, 0.9, 3)],
)
def test_the_steps_actually_run_are_recorded(
    model_dirs: dict[str, Path], name: str, steps: int, strength: float, run: int
) -> None:
    # one denoiser pass per step (PNDM, SD's default here, repeats its first step)
    scheduler = {"sd": "DDIMScheduler"}.get(name, "default")
    generator = make_generator(
        model_dirs, name, steps=steps, strength=strength, scheduler=scheduler
    )
    calls: list[int] = []
    hook = getattr(generator.pipe, generator.denoiser).register_forward_hook(
        lambda *_: calls.append(1)
    )
    generator.generate([request(37, 53, 1)])
    hook.remove()
    assert generator.describe()["steps_run"] == run == len(calls)


def test_configs_the_pipeline_would_refuse_fail_before_any_weights_load() -> None:
    with pytest.raises(ValueError, match="run 0 denoising steps"):
        SdInpaintGenerator.Config(steps=1, strength=0.99)
    assert SdxlInpaintGenerator.Config().steps_run() == 29  # NearID's 30 steps at 0.99
    assert FluxFillGenerator.Config(steps=30, strength=0.99).steps_run() == 30
    with pytest.raises(ValueError, match="less than or equal to 512"):
        FluxFillGenerator.Config(max_sequence_length=513)
    missing = "/nonexistent/local/dir"
    with pytest.raises(NearidError, match="not a diffusers scheduler"):
        SdInpaintGenerator(SdInpaintGenerator.Config(model=missing, scheduler="NoSuchScheduler"))
    with pytest.raises(NearidError, match="always uses torch SDPA"):
        SdInpaintGenerator(SdInpaintGenerator.Config(model=missing, attention="flash"))
    with pytest.raises(NearidError, match="cpu_offload"):
        SdInpaintGenerator(SdInpaintGenerator.Config(model=missing, cpu_offload=True))
    with pytest.raises(NearidError, match="is not one of"):
        FluxFillGenerator(FluxFillGenerator.Config(model=missing, attention="no_such_kernel"))


def test_run_details_and_each_request_s_batch_slot_are_recorded(
    generators: dict[str, DiffusersInpaintGenerator],
) -> None:
    sdxl = generators["sdxl"]
    described = sdxl.describe()
    assert described["resolved_dtype"] == described["vae_dtype"] == "float32"
    assert described["vae_upcast"] is False and described["attention_processors"]
    assert described["aesthetic_conditioning"] is None  # this checkpoint does not take it
    reqs = [request(37, 53, 1), request(37, 53, 2)]
    sdxl.generate(reqs)
    assert [sdxl.request_record(r) for r in reqs] == [
        {"working_size": [32, 32], "batch_size": 3, "slot": slot} for slot in (0, 1)
    ]


def test_sdxl_passes_and_records_aesthetic_scores_when_the_checkpoint_requires_them(
    model_dirs: dict[str, Path],
) -> None:
    generator = make_generator(model_dirs, "sdxl", aesthetic_score=7.0)
    generator.pipe.register_to_config(requires_aesthetics_score=True)
    echo = generator.pipe = EchoPipeline(generator.pipe)
    generator.generate([request(37, 53, 1)])
    scores = {"aesthetic_score": 7.0, "negative_aesthetic_score": 2.5}
    assert {k: echo.arguments[-1][k] for k in scores} == scores
    assert generator.describe()["aesthetic_conditioning"] == scores


def test_prompt_embeddings_stay_on_the_host_within_their_byte_budget(
    model_dirs: dict[str, Path],
) -> None:
    probe = make_generator(model_dirs, "sd")
    probe.generate([request(37, 53, 0, "a")])
    entry_bytes = probe._prompt_cache_bytes
    generator = make_generator(model_dirs, "sd", prompt_cache_mb=2.5 * entry_bytes / 2**20)
    encoded: list[str] = []
    real_encode = generator.encode
    generator.encode = lambda p, n: encoded.append(p) or real_encode(p, n)  # type: ignore[method-assign]
    for prompt in ["a", "b", "c", "b", "a"]:
        generator.generate([request(37, 53, 0, prompt)])
    assert encoded == ["a", "b", "c", "a"]  # "a" was evicted by "c", "b" was still there
    assert generator._prompt_cache_bytes == 2 * entry_bytes
    assert all(
        t.device.type == "cpu" for entry in generator._prompt_cache.values() for t in entry.values()
    )


def test_bucketed_working_sizes_come_from_a_fixed_set() -> None:
    rng = np.random.default_rng(0)
    buckets = set(bucket_sizes(resolution=1024, multiple=64))
    assert len(buckets) == len(ASPECT_BUCKETS)
    for width, height in rng.integers(20, 3000, (200, 2)):
        size = working_size(width, height, resolution=1024, multiple=64, bucketed=True)
        assert size in buckets
    assert working_size(1000, 1010, resolution=1024, multiple=64, bucketed=True) == (1024, 1024)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_our_calls_raise_no_deprecation_warnings(model_dirs: dict[str, Path], name: str) -> None:
    """Loading and painting through the current APIs: a deprecated argument of ours (such as
    ``torch_dtype=``) makes diffusers or transformers warn, and this test fail."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_generator(model_dirs, name).generate([request(37, 53, 1)])
    deprecations = [
        str(w.message)
        for w in caught
        if issubclass(w.category, FutureWarning | DeprecationWarning)
        # numpy 2 about diffusers' schedulers' own np.array(tensor) calls, not about ours
        and "__array__ implementation" not in str(w.message)
    ]
    assert deprecations == []
