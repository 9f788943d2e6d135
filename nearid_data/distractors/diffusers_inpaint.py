"""Shared machinery of the diffusers inpainting generators (SD, SDXL, FLUX Fill).

What they have in common lives here once: the config (model, scheduler, steps, guidance, working
resolution, crop, batching, precision), loading the pipeline once through ``load_pretrained``,
cropping and resizing each request to the model's working size and back, batching requests of equal
working size with one seeded ``torch.Generator`` per request, rejecting unusable model outputs
(``non_finite_output``, ``flat_output``) before they are cast to bytes, and caching prompt
embeddings per distinct (prompt, negative prompt) on the host. A subclass names its pipeline class,
encodes one prompt, and adds its own call arguments.

Checked before any weights load: at least one denoising step runs (``steps_run``: diffusers runs
``int(steps * strength)`` for the UNet pipelines, so 30 steps at 0.99 run 29 and 1 step runs none),
the scheduler is a diffusers scheduler, the attention backend exists and its kernels are installed;
subclasses add their own (FLUX: ``max_sequence_length`` <= 512).

Batches and bytes. Every call to the pipeline has exactly ``batch_size`` images: a short batch is
filled up with copies of its last request, whose outputs are dropped. A view's bytes therefore never
depend on how many other views shared its call, and on CPU not on which ones or in which slot (the
tests check it); the record keeps the batch size and slot anyway, since GPU kernels make no such
promise. The fixed batch shape also keeps ``compile`` from retracing for short last batches.

Geometry (``inpaint_geometry``): ``crop: full`` paints the whole image, ``crop: subject`` a padded
square around the mask; either is resized to about ``resolution``² pixels on a grid of 8x the VAE
scale factor (64 for SD, SDXL and FLUX), by default with its aspect ratio snapped to one of nine
buckets (``size_buckets``), painted, and resized back into place. Outside that region the output is
the input, bit for bit; inside it is the raw painted image (the stage composites and runs QA).

Output size. NearID downsampled every output to 512 (Lanczos); that belongs to export, which resizes
the reference and the distractor together so they stay pixel-aligned. A generator always returns
the request image's size.
"""

from __future__ import annotations

from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, PositiveInt, model_validator

from nearid_data.backend import BackendConfig, load_pretrained
from nearid_data.distractors.base import Generator, InpaintRequest
from nearid_data.distractors.compositing import unusable_output
from nearid_data.distractors.inpaint_geometry import (
    Region,
    paint_region,
    paste_region,
    resize_image,
    resize_mask,
    working_size,
)
from nearid_data.errors import NearidError, Rejection
from nearid_data.optional import import_optional


class DiffusionConfig(BackendConfig):
    """Settings of every diffusers inpainting generator (geometry: see the module docstring)."""

    model: str = Field(description="hub id or local directory of a diffusers pipeline")
    revision: str | None = None
    steps: PositiveInt = 30
    guidance: float = Field(7.5, ge=0.0)
    strength: float = Field(1.0, gt=0.0, le=1.0)
    scheduler: str = Field("default", description="a diffusers scheduler class name")
    negative_prompt: str = Field("", description="used when a request brings none")
    resolution: int = Field(512, ge=16, description="working size: about resolution² pixels")
    crop: Literal["full", "subject"] = "full"
    crop_padding: float = Field(0.25, ge=0.0)
    size_buckets: bool = Field(
        True, description="snap working sizes to nine aspect buckets (compiled graphs are reused)"
    )
    batch_size: PositiveInt = Field(4, description="images per pipeline call, always full")
    dtype: Literal["auto", "float16", "bfloat16", "float32"] = "auto"
    compile: bool = Field(False, description="fuse QKV and torch.compile the denoiser")
    # No CUDA graphs by default: each working size gets its own graph and memory pool.
    compile_mode: Literal[
        "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"
    ] = "max-autotune-no-cudagraphs"
    channels_last: bool = False
    cpu_offload: bool = False
    attention: str = Field("sdpa", description="'sdpa' or a diffusers attention backend name")
    prompt_cache_mb: float = Field(
        512.0, gt=0, description="host memory for cached prompt embeddings (FLUX: ~4 MB each)"
    )

    def steps_run(self) -> int:
        """Denoising steps the pipeline runs for ``steps`` and ``strength`` (its own arithmetic)."""
        return min(int(self.steps * self.strength), self.steps)

    @model_validator(mode="after")
    def _some_step_runs(self) -> DiffusionConfig:
        if self.steps_run() < 1:
            raise ValueError(
                f"steps {self.steps} at strength {self.strength} run {self.steps_run()} denoising "
                "steps; raise steps or strength so that at least one runs"
            )
        return self


@dataclass(frozen=True)
class _Job:
    region: Region
    size: tuple[int, int]


@dataclass(frozen=True)
class _Painted:
    """One request's result: its painted image or why there is none, and how it was painted."""

    image: np.ndarray | Rejection
    record: dict[str, Any]


class DiffusersInpaintGenerator(Generator):
    """Paints requests with a diffusers inpainting pipeline; subclasses add the specifics."""

    Config: ClassVar[type[DiffusionConfig]] = DiffusionConfig
    pipeline_class: ClassVar[str]
    denoiser: ClassVar[str] = "unet"
    cuda_dtype: ClassVar[str] = "float16"
    uses_negative_prompt: ClassVar[bool] = True
    # Whether the denoiser's attention goes through diffusers' attention dispatcher (FLUX does;
    # the UNets' processors call torch SDPA directly).
    attention_backends: ClassVar[bool] = False
    # Whether the pipeline decodes in float32 when the VAE is float16 and its config says
    # ``force_upcast`` (SDXL does).
    upcasts_vae: ClassVar[bool] = False
    load_arguments: ClassVar[dict[str, Any]] = {}

    config: DiffusionConfig

    def __init__(self, config: DiffusionConfig, *, device: str = "cpu") -> None:
        super().__init__(config, device=device)
        self.torch = import_optional("torch", extra="models")
        import_optional("transformers", extra="models")
        diffusers = import_optional("diffusers", extra="models")
        self._check_before_load(diffusers)
        self.dtype = self._resolve_dtype()
        pipeline_class = getattr(diffusers, self.pipeline_class)
        self.pipe = load_pretrained(
            pipeline_class.from_pretrained,
            config.model,
            dtype=self.dtype,
            revision=config.revision,
            **self.load_arguments,
        )
        self.pipe.set_progress_bar_config(disable=True)
        self._set_scheduler()
        self._optimise()
        if config.cpu_offload:
            self.pipe.enable_model_cpu_offload(device=device)
        else:
            self.pipe.to(device)
        # Latent grids must stay divisible through the VAE and every denoiser down block.
        self.multiple = 8 * int(self.pipe.vae_scale_factor)
        self._prompt_cache: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self._prompt_cache_bytes = 0
        self._painted: dict[str, dict[str, Any]] = {}

    def describe(self) -> dict[str, Any]:
        import diffusers

        denoiser = getattr(self.pipe, self.denoiser)
        processors = {
            type(m.processor).__name__ for m in denoiser.modules() if hasattr(m, "processor")
        }
        vae = self.pipe.vae
        return {
            **super().describe(),
            "pipeline": self.pipeline_class,
            "scheduler_class": type(self.pipe.scheduler).__name__,
            "steps_run": self.config.steps_run(),
            "resolved_dtype": str(self.dtype).removeprefix("torch."),
            "vae_dtype": str(vae.dtype).removeprefix("torch."),
            "vae_upcast": self.upcasts_vae
            and vae.dtype == self.torch.float16
            and bool(getattr(vae.config, "force_upcast", False)),
            "attention_processors": sorted(processors),
            "compiled": self.config.compile,
            "diffusers_version": diffusers.__version__,
        }

    def request_record(self, request: InpaintRequest) -> dict[str, Any]:
        return dict(self._painted.get(request.key, {}))

    @abstractmethod
    def encode(self, prompt: str, negative_prompt: str) -> dict[str, Any]:
        """Pipeline keyword arguments holding the embeddings of one prompt (batch dimension 1)."""

    def call_arguments(self) -> dict[str, Any]:
        """Pipeline keyword arguments that are the same for every call."""
        return {"guidance_scale": self.config.guidance, "strength": self.config.strength}

    def generate(self, requests: Sequence[InpaintRequest]) -> list[np.ndarray | Rejection]:
        jobs = [self._plan(request) for request in requests]
        by_size: dict[tuple[int, int], list[int]] = {}
        for index, job in enumerate(jobs):
            by_size.setdefault(job.size, []).append(index)
        outputs: dict[int, np.ndarray | Rejection] = {}
        self._painted = {}
        for size, indices in by_size.items():
            for start in range(0, len(indices), self.config.batch_size):
                chunk = indices[start : start + self.config.batch_size]
                painted = self._paint([requests[i] for i in chunk], [jobs[i] for i in chunk], size)
                for index, result in zip(chunk, painted, strict=True):
                    request, image = requests[index], result.image
                    self._painted[request.key] = result.record
                    outputs[index] = (
                        image
                        if isinstance(image, Rejection)
                        else paste_region(request.image, jobs[index].region, image)
                    )
        return [outputs[index] for index in range(len(requests))]

    def _plan(self, request: InpaintRequest) -> _Job:
        image, mask = request.image, request.mask
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"{request.key}: image must be RGB uint8 (H, W, 3), got {image.dtype} {image.shape}"
            )
        if mask.shape != image.shape[:2]:
            raise ValueError(
                f"{request.key}: mask {mask.shape} does not match image {image.shape[:2]}"
            )
        region = paint_region(mask, crop=self.config.crop, padding=self.config.crop_padding)
        size = working_size(
            region.width,
            region.height,
            resolution=self.config.resolution,
            multiple=self.multiple,
            bucketed=self.config.size_buckets,
        )
        return _Job(region, size)

    def _paint(
        self, requests: list[InpaintRequest], jobs: list[_Job], size: tuple[int, int]
    ) -> list[_Painted]:
        """Per request, its painted working-size crop (float RGB in [0, 1]) or its rejection."""
        real = len(requests)
        # A full batch every call: fill up with copies of the last request (outputs dropped).
        requests = requests + [requests[-1]] * (self.config.batch_size - real)
        jobs = jobs + [jobs[-1]] * (self.config.batch_size - real)
        width, height = size
        images = np.stack(
            [
                resize_image(job.region.cut(r.image).astype(np.float32) / 255.0, width, height)
                for r, job in zip(requests, jobs, strict=True)
            ]
        )
        masks = np.stack(
            [
                resize_mask(job.region.cut(r.mask), width, height)
                for r, job in zip(requests, jobs, strict=True)
            ]
        )
        # CPU generators: the same noise on any device; one per request, so batching changes none.
        generators = [self.torch.Generator("cpu").manual_seed(r.seed) for r in requests]
        with self.torch.inference_mode():
            result = self.pipe(
                image=images,
                mask_image=masks[..., None].astype(np.float32),
                height=height,
                width=width,
                num_inference_steps=self.config.steps,
                generator=generators,
                output_type="np",
                **self._embeddings(requests),
                **self.call_arguments(),
            )
        images_out = np.asarray(result.images, dtype=np.float32)
        return [
            _Painted(
                unusable_output(images_out[slot], masks[slot]) or images_out[slot],
                {"working_size": [width, height], "batch_size": len(requests), "slot": slot},
            )
            for slot in range(real)
        ]

    def _embeddings(self, requests: list[InpaintRequest]) -> dict[str, Any]:
        per_request = [self._cached_encode(self._prompt_key(r)) for r in requests]
        device = self.pipe._execution_device
        return {
            name: self.torch.cat([e[name] for e in per_request]).to(device)
            for name in per_request[0]
        }

    def _prompt_key(self, request: InpaintRequest) -> tuple[str, str]:
        if not self.uses_negative_prompt:
            return request.prompt, ""
        return request.prompt, request.negative_prompt or self.config.negative_prompt

    def _cached_encode(self, key: tuple[str, str]) -> dict[str, Any]:
        """A prompt's embeddings, kept on the host (least recently used first out when the cache
        outgrows ``prompt_cache_mb``): accelerator memory stays for the denoiser."""
        cache = self._prompt_cache
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        with self.torch.inference_mode():
            encoded = {name: value.to("cpu") for name, value in self.encode(*key).items()}
        cache[key] = encoded
        self._prompt_cache_bytes += _nbytes(encoded)
        limit = self.config.prompt_cache_mb * 2**20
        while self._prompt_cache_bytes > limit and len(cache) > 1:
            _, evicted = cache.popitem(last=False)
            self._prompt_cache_bytes -= _nbytes(evicted)
        return encoded

    def _check_before_load(self, diffusers: Any) -> None:
        """What the pipeline would reject only after its weights loaded, checked now."""
        if self.config.cpu_offload and self.device == "cpu":
            raise NearidError("cpu_offload moves models onto an accelerator; the device is cpu")
        scheduler = self.config.scheduler
        if scheduler != "default" and not isinstance(getattr(diffusers, scheduler, None), type):
            raise NearidError(f"scheduler {scheduler!r} is not a diffusers scheduler class")
        attention = self.config.attention
        if attention == "sdpa":
            return
        if not self.attention_backends:
            raise NearidError(
                f"attention {attention!r}: the {self.pipeline_class} denoiser always uses torch "
                "SDPA; set attention: sdpa"
            )
        from diffusers.models import attention_dispatch

        known = [backend.value for backend in attention_dispatch.AttentionBackendName]
        if attention not in known:
            raise NearidError(f"attention {attention!r} is not one of: sdpa, {', '.join(known)}")
        try:
            attention_dispatch._check_attention_backend_requirements(
                attention_dispatch.AttentionBackendName(attention)
            )
        except (ValueError, RuntimeError) as exc:
            raise NearidError(f"attention {attention!r}: {exc}") from exc

    def _resolve_dtype(self) -> Any:
        name: str = self.config.dtype
        if name == "auto":
            name = self.cuda_dtype if self.device.startswith("cuda") else "float32"
        return getattr(self.torch, name)

    def _set_scheduler(self) -> None:
        name = self.config.scheduler
        if name == "default":
            return
        current = self.pipe.scheduler
        known = {cls.__name__: cls for cls in [type(current), *current.compatibles]}
        if name not in known:
            raise NearidError(
                f"scheduler {name!r} does not fit {self.pipeline_class}; "
                f"compatible: {', '.join(sorted(known))}"
            )
        self.pipe.scheduler = known[name].from_config(current.config)

    def _optimise(self) -> None:
        denoiser = getattr(self.pipe, self.denoiser)
        if self.config.attention != "sdpa":
            try:
                denoiser.set_attention_backend(self.config.attention)
            except (ValueError, RuntimeError) as exc:
                raise NearidError(f"attention {self.config.attention!r}: {exc}") from exc
        if self.config.channels_last:
            denoiser.to(memory_format=self.torch.channels_last)
            self.pipe.vae.to(memory_format=self.torch.channels_last)
        if self.config.compile:
            if hasattr(denoiser, "fuse_qkv_projections"):
                denoiser.fuse_qkv_projections()
            # Bucketed sizes and full batches give a handful of static shapes; without buckets
            # the working size varies, so let torch mark the changing dims dynamic.
            dynamic = False if self.config.size_buckets else None
            denoiser.compile(mode=self.config.compile_mode, fullgraph=True, dynamic=dynamic)


def _nbytes(tensors: dict[str, Any]) -> int:
    return sum(int(t.numel() * t.element_size()) for t in tensors.values())
