"""The ImageNet weights of the ResNets, staged like the datasets.

torchvision fetches its weights into a cache the first time a model asks for them, which on a cluster means
inside a GPU job on a compute node that often has no internet (a bare ``URLError``). Here they are data: rule
``imagenet_weights`` (a local rule, run where the workflow is launched) downloads torchvision's file to
``resources/weights/<file>``, resumable and checked against the sha256 prefix in its name (torch.hub's own
check), and the training rules take that file as an input and load it as a path. The URL and the file name
come from the weight enums of ``backbone.ARCHS`` (torchvision's ``IMAGENET1K_V1``: the weights IRN loads), so
there is one source.
EfficientNet-Lite0's weights ship with a pip package and need no download (``backbone.imagenet_state_dict``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

WEIGHTS_DIR = "resources/weights"


@dataclass(frozen=True)
class WeightsFile:
    arch: str
    url: str
    filename: str
    sha256_prefix: str

    @property
    def path(self) -> str:
        """Where the workflow keeps it (relative to the workflow directory)."""
        return f"{WEIGHTS_DIR}/{self.filename}"


def imagenet_file(arch: str) -> WeightsFile | None:
    """The torchvision ImageNet file of ``arch``, or None when ``arch``'s weights need no download."""
    from matlabel.backbone import ARCHS  # torchvision's ResNets and their ImageNet weights

    if arch not in ARCHS:
        return None
    url = ARCHS[arch][1].url
    filename = url.rsplit("/", 1)[1]
    match = re.search(r"-([a-f0-9]{8,})\.", filename)  # torch.hub.HASH_REGEX
    if match is None:
        raise ValueError(f"{url}: no sha256 prefix in the file name")
    return WeightsFile(arch, url, filename, match.group(1))


def file_by_name(filename: str) -> WeightsFile:
    """The registry entry whose file is ``filename`` (the download rule's wildcard)."""
    from matlabel.backbone import ARCHS

    entries = [imagenet_file(arch) for arch in ARCHS]
    for entry in entries:
        if entry.filename == filename:
            return entry
    known = ", ".join(e.filename for e in entries)
    raise ValueError(f"{filename}: not a known ImageNet weights file; known: {known}")


def staged(model: dict) -> WeightsFile | None:
    """The file a model config (``arch``, ``weights``) needs staged: its ImageNet file when ``weights`` is
    ``imagenet`` and the arch downloads one, else None (random init, a user's path, pip-shipped weights)."""
    return imagenet_file(model["arch"]) if model.get("weights") == "imagenet" else None
