"""The ImageNet weights of the ResNets, staged like the datasets.

torchvision fetches its weights into a cache the first time a model asks for them, which on a cluster means
inside a GPU job on a compute node that often has no internet (a bare ``URLError``). Here they are data: rule
``imagenet_weights`` (a local rule, run where the workflow is launched) downloads torchvision's file to
``resources/weights/<file>``, resumable and checked against the sha256 prefix in its name (torch.hub's own
check), and the training rules take that file as an input and load it as a path. The URLs are those of torchvision's
``IMAGENET1K_V1`` weight enums (the weights IRN loads), written out in ``IMAGENET_URLS`` so that planning the
workflow does not import torch; a test keeps them equal to the enums of ``backbone.ARCHS``.
EfficientNet-Lite0's weights ship with a pip package and need no download (``backbone.imagenet_state_dict``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

WEIGHTS_DIR = "resources/weights"
#: torchvision.models.ResNet*_Weights.IMAGENET1K_V1.url (tests/test_download.py checks them against torchvision)
IMAGENET_URLS = {
    "resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    "resnet34": "https://download.pytorch.org/models/resnet34-b627a593.pth",
    "resnet50": "https://download.pytorch.org/models/resnet50-0676ba61.pth",
    "resnet101": "https://download.pytorch.org/models/resnet101-63fe2227.pth",
}


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
    if arch not in IMAGENET_URLS:
        return None
    url = IMAGENET_URLS[arch]
    filename = url.rsplit("/", 1)[1]
    match = re.search(r"-([a-f0-9]{8,})\.", filename)  # torch.hub.HASH_REGEX
    if match is None:
        raise ValueError(f"{url}: no sha256 prefix in the file name")
    return WeightsFile(arch, url, filename, match.group(1))


def file_by_name(filename: str) -> WeightsFile:
    """The registry entry whose file is ``filename`` (the download rule's wildcard)."""
    entries = [imagenet_file(arch) for arch in IMAGENET_URLS]
    for entry in entries:
        if entry.filename == filename:
            return entry
    known = ", ".join(e.filename for e in entries)
    raise ValueError(f"{filename}: not a known ImageNet weights file; known: {known}")


def staged(model: dict) -> WeightsFile | None:
    """The file a model config (``arch``, ``weights``) needs staged: its ImageNet file when ``weights`` is
    ``imagenet`` and the arch downloads one, else None (random init, a user's path, pip-shipped weights)."""
    return imagenet_file(model["arch"]) if model.get("weights") == "imagenet" else None
