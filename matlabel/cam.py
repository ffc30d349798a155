"""The CAM baseline (Zhou et al., CVPR 2016) as IRN trains and exports it (Table 1 row "CAM").

Model: backbone → global average pooling → 1×1 convolution without bias (num_fg classes); the class
activation map of class c is ReLU(w_c · f(x)) at the backbone's output stride (IRN net/resnet50_cam.py).
Export: multi-scale {1.0, 0.5, 1.5, 2.0} + horizontal flip, summed, upsampled to the image size, each
present class divided by its own maximum (IRN step/make_cam.py); every method's maps optionally read from the image
mirrored outwards (``read_maps``, config ``export.border_pad``; IRN does not pad). Seeds: background is a constant plane
at ``bg_threshold`` and every pixel takes the argmax (IRN step/eval_cam.py).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from matlabel.backbone import IMAGENET_MEAN, IMAGENET_STD, StagedBackbone
from matlabel.seeds import cams_to_labels, labels_at_thresholds  # noqa: F401  (re-exported)


class CAMNet(nn.Module):
    """Classifier whose class activation maps are read off the last feature map.

    ``forward(x)`` → (B, num_fg) logits; ``cam(x)`` → (B, num_fg, h, w) non-negative maps at the
    backbone's output stride (``map_stride``). Every map-producing method of the workflow (CAM, D2CAM, ReCAM)
    exposes ``cam`` and ``map_stride`` so the export rule, and its border reading (``read_maps``), are shared.
    """

    def __init__(self, num_fg: int, backbone: StagedBackbone):
        super().__init__()
        self.backbone = backbone
        self.classifier = nn.Conv2d(backbone.out_channels, num_fg, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.backbone(x)
        return self.classifier(f.mean((2, 3), keepdim=True)).flatten(1)

    @property
    def map_stride(self) -> int:
        """Pixels per cell of ``cam``'s maps: the backbone's output stride."""
        return self.backbone.output_stride

    def cam(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.classifier(self.backbone(x)))

    def param_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(pretrained backbone parameters, newly added parameters) for the 1× / 10× learning rates."""
        trainable = [p for p in self.backbone.parameters() if p.requires_grad]
        return trainable, list(self.classifier.parameters())


def normalize(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 RGB → (3, H, W) float32 normalised with the ImageNet mean/std."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (x - mean) / std


#: The object-free images of ``border_response``: (name, RGB fill). "mean" normalises to zero everywhere.
BLANK_IMAGES = (("black", (0, 0, 0)), ("mean", tuple(round(255 * m) for m in IMAGENET_MEAN)))


@torch.no_grad()
def border_response(model: nn.Module, size: tuple[int, int] = (256, 256), device: str | torch.device = "cpu",
                    ring: int = 1) -> dict:
    """How much a model's maps light the image border on images without any object (issue: D2CAM's maps fired
    along image borders).

    For each of :data:`BLANK_IMAGES` at ``size``, ``model.cam`` gives the raw maps at the network's stride; the
    outermost ``ring`` cells form the border, the rest the interior. Returns ``{image: {"excess", "worst",
    "raw_border", "raw_interior"}}`` where ``excess`` is the mean over classes of (border mean − interior
    mean) of each map divided by its own maximum (+1e-5), i.e. as the export normalises maps (0: no border preference,
    1: the border alone lit), ``worst`` the class (1-based, as the labels) with the largest excess and its value, and
    ``raw_border`` / ``raw_interior`` the largest raw values there (over classes).
    """
    was_training = model.training
    model.eval()
    out = {}
    for name, rgb in BLANK_IMAGES:
        image = np.empty((*size, 3), dtype=np.uint8)
        image[:] = rgb
        maps = model.cam(normalize(image).unsqueeze(0).to(device))[0].float().cpu()  # (N, h, w)
        border = torch.ones(maps.shape[-2:], dtype=torch.bool)
        border[ring:-ring, ring:-ring] = False
        if border.all():
            raise ValueError(f"maps of {tuple(maps.shape[-2:])} cells have no interior inside a ring of {ring}")
        norm = maps / (maps.flatten(1).amax(1).view(-1, 1, 1) + 1e-5)
        excess = norm[:, border].mean(1) - norm[:, ~border].mean(1)
        worst = int(excess.argmax())
        out[name] = {"excess": round(float(excess.mean()), 4),
                     "worst": {"class": worst + 1, "excess": round(float(excess[worst]), 4)},
                     "raw_border": round(float(maps[:, border].max()), 4),
                     "raw_interior": round(float(maps[:, ~border].max()), 4)}
    model.train(was_training)
    return out


def check_border_pad(model: nn.Module, pad: int) -> int:
    """``pad`` when ``read_maps`` can read ``model``'s maps with it: a whole number of map cells (a multiple of
    ``model.map_stride``, so the cropped cells cover the same pixels as the plain maps'); ValueError otherwise."""
    stride = model.map_stride
    if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0 or pad % stride:
        raise ValueError(f"border_pad must be a multiple of {stride} pixels >= 0 (the map stride of "
                         f"{type(model).__name__}; config export.border_pad), got {pad!r}")
    return pad


def read_maps(model: nn.Module, x: torch.Tensor, pad: int = 0) -> torch.Tensor:
    """``model.cam(x)`` read from ``x`` mirrored outwards by ``pad`` pixels, its ``pad / model.map_stride`` outer
    cells cropped off again: the same grid as the plain maps, with the trunk's zero padding outside the image.

    The one border reading of every map-producing method (config ``export.border_pad``, 0: the plain maps): the
    maps of CAM, ReCAM and D2CAM are compared on equal terms. Reflect; replicate when the input is not larger than
    ``pad`` (small scales). Neither the paper nor IRN (jiwoon-ahn/irn step/make_cam.py) pads: why this exists is
    in docs/paper-readings.md (D2CAM's maps had learnt to light the zero-padded border).
    """
    p = check_border_pad(model, pad)
    if not p:
        return model.cam(x)
    mode = "reflect" if p < min(x.shape[-2:]) else "replicate"
    maps = model.cam(F.pad(x, (p, p, p, p), mode=mode))
    c = p // model.map_stride
    return maps[..., c:maps.shape[-2] - c, c:maps.shape[-1] - c]


@torch.no_grad()
def multiscale_cams(model: nn.Module, image: np.ndarray, classes, scales=(1.0, 0.5, 1.5, 2.0), flip: bool = True,
                    device: str | torch.device = "cpu", amp: bool = False, border_pad: int = 0) -> np.ndarray:
    """Class activation maps of the present classes, averaged over scales (and flips), at image size.

    Parameters
    ----------
    model : has ``cam(x) -> (B, num_fg, h, w)`` with non-negative maps.
    image : (H, W, 3) uint8 RGB.
    classes : foreground class indices present in the image (1-based, background = 0 excluded).
    scales : input rescaling factors (paper Sec. 4.2: {0.5, 1.0, 1.5, 2.0}).
    border_pad : each scale's maps are read from the input mirrored outwards by this many pixels (``read_maps``).

    Returns
    -------
    (len(classes), H, W) float32 in [0, 1]: each map divided by its own maximum (+1e-5), as IRN.
    As in IRN, each scale's map is upsampled to the stride-padded size (ceil(H/s)·s) and cropped, so map
    cells stay aligned with the pixels they cover.
    """
    h, w = image.shape[:2]
    check_border_pad(model, border_pad)
    if len(classes) == 0:  # an image without labels has no maps; its seed is all background
        return np.zeros((0, h, w), dtype=np.float32)
    idx = torch.as_tensor([c - 1 for c in classes], dtype=torch.long, device=device)
    x0 = normalize(image).unsqueeze(0).to(device)
    total = torch.zeros((len(classes), h, w), device=device)
    for s in scales:
        size = (max(1, round(h * s)), max(1, round(w * s)))
        # bicubic rescale of the input, as IRN's pil_rescale(img, s, order=3)
        x = x0 if s == 1.0 else F.interpolate(x0, size=size, mode="bicubic", align_corners=False)
        if flip:
            x = torch.cat([x, x.flip(-1)], 0)
        with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=amp):
            maps = read_maps(model, x, border_pad).float()
        maps = maps[:, idx]
        maps = maps[0] + maps[1].flip(-1) if flip else maps[0]
        stride = _stride_of(size, maps.shape[-2:])
        up = (maps.shape[-2] * stride, maps.shape[-1] * stride)
        maps = F.interpolate(maps.unsqueeze(0), size=up, mode="bilinear", align_corners=False)[0]
        # the crop to the rescaled size, then back to the image size
        maps = maps[:, : size[0], : size[1]]
        if size != (h, w):
            maps = F.interpolate(maps.unsqueeze(0), size=(h, w), mode="bilinear", align_corners=False)[0]
        total += maps
    total /= total.flatten(1).amax(1).view(-1, 1, 1) + 1e-5
    return total.cpu().numpy().astype(np.float32)


def _stride_of(size: tuple[int, int], feat: tuple[int, int]) -> int:
    """The network stride that maps an input of ``size`` to a feature map of ``feat`` (ceil division)."""
    for stride in (4, 8, 16, 32):
        if (-(-size[0] // stride), -(-size[1] // stride)) == tuple(feat):
            return stride
    # tiny inputs can round oddly; fall back to the nearest ratio
    return max(1, round(size[0] / feat[0]))

