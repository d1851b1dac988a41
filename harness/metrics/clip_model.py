"""Loading open_clip models for CLIP score and CLIP features, offline-first.

``model`` is one of:
- ``builtin:tiny``: a small open_clip CLIP with random weights built from a seed (tests, offline suites;
  its scores exercise the code, they do not measure prompt adherence),
- ``local-dir:PATH``: an open_clip folder (open_clip_config.json + weights), e.g. a project-trained evaluator,
- an open_clip model name (``ViT-B-32``) with ``pretrained`` = a tag (``openai``, from the hub cache
  when offline) or a checkpoint file path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import tomlread
from harness.errors import InputError, Where
from harness.metrics.base import NO_EVALUATORS, Evaluators
from harness.samples import io_threads

BUILTIN_TINY = "builtin:tiny"
TEXT_BATCH = 32
TINY_SEED = 1234
_CACHE: dict[tuple[str, str | None, str], LoadedClip] = {}


@dataclass
class LoadedClip:
    model: Any
    preprocess: Any
    tokenizer: Any
    context_length: int
    id: str
    device: str = "cpu"
    # embeddings of the texts encoded so far: a prompt repeats across seeds and configurations
    text_embeddings: dict[str, Any] = field(default_factory=dict, repr=False)

    def encode_images(self, images: list[Any]) -> Any:
        """L2-normalised image embeddings (float32, on the CPU) of uint8 HxWx3 arrays.

        open_clip's own preprocessing (PIL resize, crop, normalise), so the values are
        open_clip's, run on threads (PIL releases the GIL while resizing); the network
        runs on ``device``.
        """
        import torch
        from PIL import Image

        def prepare(image: Any) -> Any:
            return self.preprocess(Image.fromarray(image))

        with ThreadPoolExecutor(max_workers=io_threads()) as pool:
            batch = torch.stack(list(pool.map(prepare, images))).to(self.device)
        with torch.no_grad():
            features = self.model.encode_image(batch).float()
        return (features / features.norm(dim=-1, keepdim=True)).cpu()

    def encode_texts(self, texts: list[str]) -> Any:
        """L2-normalised text embeddings, on the CPU (texts longer than the context are truncated by the tokenizer)."""
        import torch

        tokens = self.tokenizer(texts).to(self.device)
        with torch.no_grad():
            features = self.model.encode_text(tokens).float()
        return (features / features.norm(dim=-1, keepdim=True)).cpu()

    def encode_prompts(self, texts: Sequence[str]) -> Any:
        """``encode_texts`` with each distinct text encoded once per loaded model (with the other
        new texts of its call, in order of first appearance): a prompt's embedding is computed
        once per run, not once per image of each seed and configuration."""
        import torch

        missing = [text for text in dict.fromkeys(texts) if text not in self.text_embeddings]
        for start in range(0, len(missing), TEXT_BATCH):
            part = missing[start : start + TEXT_BATCH]
            self.text_embeddings.update(zip(part, self.encode_texts(part), strict=True))
        return torch.stack([self.text_embeddings[text] for text in texts])

    def token_count(self, text: str) -> int:
        """Tokens including start and end markers, before truncation."""
        if hasattr(self.tokenizer, "encode"):  # open_clip's SimpleTokenizer: BPE ids without markers
            return len(self.tokenizer.encode(text)) + 2
        return len(self.tokenizer.tokenizer(text)["input_ids"])  # HFTokenizer / SigLipTokenizer wrap a HF tokenizer


def random_weights_warning(metric: str, options: Mapping[str, Any]) -> str | None:
    """A warning when ``metric`` is computed with a model whose weights are random (its values mean nothing)."""
    if options.get("features") == "tiny" or options.get("model") == BUILTIN_TINY:
        return (
            f"{metric} is computed with random built-in weights ({options.get('model') or 'tiny features'}): its "
            "values exercise the code path and mean nothing; gate on it only with a trained model "
            "(model = 'ViT-B-32', pretrained = a checkpoint, or the shapes world's evaluator)"
        )
    return None


def parse_clip_options(table: Mapping[str, Any], where: Where, suite_dir: Path) -> dict[str, Any]:
    """``model`` and ``pretrained`` with local paths made absolute; an absent model is chosen by the suite."""
    model = tomlread.get(table, "model", str, where)
    pretrained = tomlread.get(table, "pretrained", str, where)
    if model is not None and model.startswith("local-dir:"):
        model = "local-dir:" + str((suite_dir / model.removeprefix("local-dir:")).resolve())
    if pretrained and (
        pretrained.startswith((".", "/", "~")) or pretrained.endswith((".bin", ".pt", ".pth", ".safetensors"))
    ):
        pretrained = str((suite_dir / Path(pretrained).expanduser()).resolve())
    return {"model": model, "pretrained": pretrained}


def check_clip(options: Mapping[str, Any], evaluators: Evaluators = NO_EVALUATORS) -> None:
    """Raise an :class:`InputError` naming what to place where, without loading."""
    model, pretrained = options.get("model") or BUILTIN_TINY, options.get("pretrained")
    if model.startswith(("builtin:", "local-dir:")):
        if model == BUILTIN_TINY:
            return
        folder = (
            _builtin_folder(model, evaluators)
            if model.startswith("builtin:")
            else Path(model.removeprefix("local-dir:"))
        )
        if not (folder / "open_clip_config.json").is_file():
            raise InputError(f"no open_clip model at {folder}: place open_clip_config.json and its weights there")
        return
    import open_clip

    if model not in open_clip.list_models():
        from harness.errors import unknown

        raise InputError(unknown("open_clip model", model, open_clip.list_models()))
    if pretrained is None:
        raise InputError(f"CLIP model {model!r} needs pretrained = a tag (e.g. 'openai') or a checkpoint path")
    if "/" in pretrained:
        if not Path(pretrained).is_file():
            raise InputError(f"CLIP checkpoint not found: place it at {pretrained}")
        return
    tags = open_clip.list_pretrained_tags_by_model(model)
    if pretrained not in tags:
        from harness.errors import unknown

        raise InputError(unknown(f"pretrained tag for {model}", pretrained, tags))
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        config = open_clip.get_pretrained_cfg(model, pretrained)
        repo = config.get("hf_hub", "").rstrip("/")
        if repo:
            from huggingface_hub import try_to_load_from_cache

            found = [
                try_to_load_from_cache(repo, name)
                for name in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
            ]
            if not any(isinstance(item, str) for item in found):
                raise InputError(
                    f"CLIP weights {model}/{pretrained} are not in the local hub cache and this machine is offline: "
                    f"run `hf download {repo}` where there is network, or set pretrained = a checkpoint path"
                )


def values_id(metric: str, options: Mapping[str, Any], device: str, evaluators: Evaluators = NO_EVALUATORS) -> str:
    """What a CLIP-based metric's values depend on, without loading the model: the model and
    checkpoint named, the size and modification time of the files they are read from, the
    library versions and the device type (the reference value cache's key)."""
    import importlib.metadata

    from harness.identity import file_fingerprint
    from harness.metrics.tensors import device_type

    model, pretrained = options.get("model") or BUILTIN_TINY, options.get("pretrained")
    files: list[Path] = []
    if model.startswith("builtin:") and model != BUILTIN_TINY:
        files = sorted(_builtin_folder(model, evaluators).iterdir())
    elif model.startswith("local-dir:") and Path(model.removeprefix("local-dir:")).is_dir():
        files = sorted(Path(model.removeprefix("local-dir:")).iterdir())
    if pretrained and Path(pretrained).is_file():
        files.append(Path(pretrained))
    fingerprints = [f"{file.name}={file_fingerprint(file)}" for file in files if file.is_file()]
    libraries = [f"{name}={importlib.metadata.version(name)}" for name in ("torch", "open_clip_torch", "pillow")]
    seed = f"seed={TINY_SEED}" if model == BUILTIN_TINY else ""
    return "|".join([metric, model, str(pretrained), seed, *fingerprints, *libraries, device_type(device)])


def load_clip(options: Mapping[str, Any], device: str = "cpu", evaluators: Evaluators = NO_EVALUATORS) -> LoadedClip:
    """Load (once per process and device) the CLIP model ``options`` names, on ``device``; ``evaluators`` find the
    folders of built-in ones other than ``builtin:tiny``."""
    model, pretrained = options.get("model") or BUILTIN_TINY, options.get("pretrained")
    key = (model, pretrained, device)
    if key not in _CACHE:
        check_clip(options, evaluators)
        loaded = _load(model, pretrained, evaluators)
        loaded.model.to(device)
        loaded.device = device
        _CACHE[key] = loaded
    return _CACHE[key]


def _load(model_name: str, pretrained: str | None, evaluators: Evaluators) -> LoadedClip:
    import open_clip

    if model_name == BUILTIN_TINY:
        return _tiny()
    if model_name.startswith("builtin:"):
        model_name = f"local-dir:{_builtin_folder(model_name, evaluators)}"
    model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=pretrained)
    model.eval()
    tokenizer = open_clip.get_tokenizer(model_name)
    context = int(getattr(tokenizer, "context_length", 77) or 77)
    return LoadedClip(model, preprocess, tokenizer, context, f"{model_name}:{pretrained}")


def _builtin_folder(model: str, evaluators: Evaluators) -> Path:
    """The open_clip folder of a plug-in's built-in CLIP (the shapes world's ``builtin:shapes``)."""
    if model not in evaluators:
        from harness.errors import unknown

        raise InputError(unknown("built-in CLIP", model, [BUILTIN_TINY, *evaluators]))
    return evaluators[model]()


def _tiny() -> LoadedClip:
    import open_clip
    import torch
    from open_clip.model import CLIPTextCfg, CLIPVisionCfg

    state = torch.random.get_rng_state()
    torch.manual_seed(TINY_SEED)
    try:
        model = open_clip.CLIP(
            embed_dim=64,
            vision_cfg=CLIPVisionCfg(layers=2, width=64, head_width=32, patch_size=8, image_size=64),
            text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=2, layers=2),
        )
    finally:
        torch.random.set_rng_state(state)
    model.eval()
    preprocess = open_clip.image_transform(64, is_train=False)
    tokenizer = open_clip.get_tokenizer("ViT-B-32")  # the BPE vocabulary ships inside open_clip
    return LoadedClip(model, preprocess, tokenizer, 77, f"{BUILTIN_TINY}-{TINY_SEED}")
