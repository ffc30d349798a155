"""A synthetic dataset in PASCAL VOC layout that carries the failure modes Mat-Label attacks.

The demo and the tests run the very same loaders and rules as VOC 2012 on it: :func:`generate` writes
``JPEGImages/<id>.jpg``, palette PNG masks in ``SegmentationClass/`` (VOC class indices, 0 background,
255 a void band of ``border_px`` pixels on object boundaries, like VOC's), the split lists ``train``,
``val`` and ``train_aug`` (= ``train``) in ``ImageSets/Segmentation/`` and ``cls_labels.json``. The
held-out ``val`` split is drawn with its own seed.

Each image is a textured background (one of :data:`FAMILIES`: smooth noise, stripes, grain, bricks,
...) with 1-3 objects of VOC classes on it. Every failure mode that the paper addresses is built in on
purpose, each behind a knob of :class:`SyntheticConfig`:

* under-activation (``part_size``): an object is a body plus a small discriminative part (a patterned
  disc at one tip) whose colour and pattern identify the class. Bodies of all classes come from one
  shared family of shapes, colours and textures, so a classifier can name the class from the part
  alone and its CAM tends to cover the part only;
* over-activation (``p_context``): each class has a preferred background family (boats on water,
  aeroplanes in the sky), chosen with probability ``p_context``, so a classifier also fires on the
  context;
* category confusion (``p_touch``): a second object of another class is placed touching or
  overlapping an earlier one; draw order decides occlusion;
* boundaries where matting should beat CAM thresholds: thin structures (``p_thin``, ``thin_px``:
  legs, antennae, masts a few pixels wide, part of the object mask), soft anti-aliased edges
  (``edge_blur``: the object is composited with a blurred alpha; the ground truth is alpha >= 0.5)
  and bodies whose colour partly matches the background under them (``p_camouflage``).

What the dataset can and cannot tell about the method: it exercises every rule of the workflow with
the loaders, file formats and evaluation rules of VOC 2012, and because each failure mode is present
by construction (and can be switched off), it is built to separate methods on exactly those modes:
a pipeline that only thresholds CAMs should lose the bodies, thin structures and soft boundaries that
a trimap plus matting can recover, and a classifier without the D2CAM losses should leak onto the
context; the tables measure whether it does. Its numbers
are not comparable with VOC's, and it says nothing about real-photo statistics (object shapes,
textures, clutter, scale, class count, label noise): a ranking of methods on it is a sanity check of
the implementation, not evidence about the paper's claims on PASCAL VOC or COCO.

Determinism: every image is drawn from its own ``numpy.random.Generator`` seeded with
``(seed, index)`` (``val_seed`` for ``val``), so an image does not depend on the order of other calls
and the same config gives byte-identical files. Thin structures narrower than the void band keep
their labels inside it (only the background side of their edge becomes void); VOC marks such parts
void wholesale, which would hide from the score exactly what matting is good at.
"""
from __future__ import annotations

import colorsys
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import cv2
import numpy as np
from PIL import Image

from matlabel.datasets.layout import (
    IGNORE_INDEX,
    VOC_CLASSES,
    labels_from_mask,
    write_cls_labels,
    write_split,
)
from matlabel.io import atomic_path, write_label_png

#: Background families, in the order they are assigned as context to ``SyntheticConfig.classes``
#: (the i-th class prefers ``FAMILIES[i % len(FAMILIES)]``); the defaults pair aeroplane-sky,
#: bird-foliage, boat-water, car-road, cat-indoor, person-grass, and leave sand and brick to no class.
FAMILIES = ("sky", "foliage", "water", "road", "indoor", "grass", "sand", "brick")

_MAX_ATTEMPTS = 50
_SHAPE_POINTS = 64


@dataclass(frozen=True)
class SyntheticConfig:
    """Knobs of the synthetic dataset; each field is a config key of the same name.

    Pixel sizes (``thin_px``, ``edge_blur``, ``border_px``) are absolute, the object size is relative
    to the image, so a demo at small images should lower the pixel sizes with it.
    """

    n_train: int = 200
    """Number of training images (split ``train``; ``train_aug`` lists the same images)."""
    n_val: int = 100
    """Number of held-out validation images (split ``val``)."""
    width: int = 500
    """Image width in pixels (VOC images are mostly 500 x 375)."""
    height: int = 375
    """Image height in pixels."""
    seed: int = 0
    """Seed of the training images."""
    val_seed: int = 1
    """Seed of the validation images; must differ from ``seed``."""
    classes: tuple[int, ...] = (1, 3, 4, 7, 8, 15)
    """VOC class indices used (default aeroplane, bird, boat, car, cat, person)."""
    min_objects: int = 1
    """Fewest objects drawn per image."""
    max_objects: int = 3
    """Most objects drawn per image."""
    size_min: float = 0.12
    """Smallest body radius, as a fraction of min(width, height)."""
    size_max: float = 0.24
    """Largest body radius, as a fraction of min(width, height)."""
    part_size: float = 0.4
    """Radius of the class-specific discriminative part relative to the body radius (under-activation)."""
    p_context: float = 0.7
    """Probability that the background is the first object's class context family (over-activation)."""
    p_touch: float = 0.5
    """Probability that each further object is of another class and touches/overlaps an earlier one."""
    p_thin: float = 0.6
    """Probability that an object has thin structures (legs, antennae, masts)."""
    thin_px: int = 3
    """Width of thin structures in pixels."""
    edge_blur: float = 1.2
    """Sigma in pixels of the Gaussian blur of object alpha (soft edges); 0 = hard edges."""
    p_camouflage: float = 0.3
    """Probability that an object's body colour is pulled towards the background under it."""
    border_px: int = 5
    """Width in pixels of the void (255) band on label boundaries; 0 = none."""
    jpeg_quality: int = 90
    """JPEG quality of the written images (1-100)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(int(c) for c in self.classes))
        errors = _config_errors(self)
        if errors:
            raise ValueError("invalid synthetic dataset config: " + "; ".join(errors))

    @classmethod
    def from_mapping(cls, values: Mapping) -> "SyntheticConfig":
        """Build a config from a mapping (e.g. the ``synthetic:`` section of config.yaml).

        Raises ``ValueError`` naming unknown keys.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown synthetic dataset keys {unknown}; known keys: {sorted(known)}")
        return cls(**dict(values))


def _config_errors(cfg: SyntheticConfig) -> list[str]:
    """Messages for every out-of-range field of ``cfg`` (empty when valid)."""
    err = []
    if cfg.n_train < 1 or cfg.n_val < 1:
        err.append(f"n_train and n_val must be >= 1 (got {cfg.n_train}, {cfg.n_val})")
    if cfg.width < 32 or cfg.height < 32:
        err.append(f"width and height must be >= 32 (got {cfg.width} x {cfg.height})")
    if cfg.seed == cfg.val_seed:
        err.append(f"val_seed must differ from seed (both {cfg.seed}), or val repeats train")
    if len(set(cfg.classes)) != len(cfg.classes) or len(cfg.classes) < 2:
        err.append(f"classes must be at least 2 distinct VOC indices (got {list(cfg.classes)})")
    if any(not 1 <= c < len(VOC_CLASSES) for c in cfg.classes):
        err.append(f"classes must be VOC indices 1..{len(VOC_CLASSES) - 1} (got {list(cfg.classes)})")
    if not 1 <= cfg.min_objects <= cfg.max_objects:
        err.append(f"need 1 <= min_objects <= max_objects (got {cfg.min_objects}, {cfg.max_objects})")
    if not 0 < cfg.size_min <= cfg.size_max <= 0.5:
        err.append(f"need 0 < size_min <= size_max <= 0.5 (got {cfg.size_min}, {cfg.size_max})")
    if not 0 < cfg.part_size <= 1:
        err.append(f"part_size must be in (0, 1] (got {cfg.part_size})")
    for name in ("p_context", "p_touch", "p_thin", "p_camouflage"):
        if not 0 <= getattr(cfg, name) <= 1:
            err.append(f"{name} must be a probability in [0, 1] (got {getattr(cfg, name)})")
    if cfg.thin_px < 1:
        err.append(f"thin_px must be >= 1 (got {cfg.thin_px})")
    if cfg.edge_blur < 0:
        err.append(f"edge_blur must be >= 0 (got {cfg.edge_blur})")
    if cfg.border_px < 0:
        err.append(f"border_px must be >= 0 (got {cfg.border_px})")
    if not 1 <= cfg.jpeg_quality <= 100:
        err.append(f"jpeg_quality must be in 1..100 (got {cfg.jpeg_quality})")
    return err


# ----------------------------------------------------------------------------------------------------
# Scene plans: what is drawn where, decided before any pixel is rendered.


@dataclass(frozen=True)
class ObjectPlan:
    """Geometry and appearance of one object (pixel units, angles in radians)."""

    cls: int
    """VOC class index."""
    cx: float
    cy: float
    radius: float
    """Body radius along its major axis, pixels."""
    aspect: float
    """Minor / major axis ratio of the body, in (0, 1]."""
    angle: float
    """Orientation of the major axis; the discriminative part sits at its +x tip."""
    touches: int = -1
    """Index of the earlier object this one was placed against, -1 if placed freely."""
    thin: bool = False
    """Whether thin structures are drawn."""
    camouflage: bool = False
    """Whether the body colour is pulled towards the background."""


@dataclass(frozen=True)
class ScenePlan:
    """Background family and objects of one image, objects in draw order (later ones occlude)."""

    background: str
    objects: tuple[ObjectPlan, ...]


@dataclass(frozen=True)
class Example:
    """One rendered image with its ground truth.

    Attributes
    ----------
    image : (H, W, 3) uint8 RGB.
    mask : (H, W) uint8, VOC class indices, 0 background, 255 void band.
    labels : sorted foreground classes present in ``mask``.
    plan : the scene that was drawn.
    """

    image: np.ndarray
    mask: np.ndarray
    labels: list[int]
    plan: ScenePlan


def context_family(cfg: SyntheticConfig, cls: int) -> str:
    """The preferred background family of class ``cls`` (a VOC index listed in ``cfg.classes``)."""
    return FAMILIES[cfg.classes.index(cls) % len(FAMILIES)]


def image_rng(seed: int, index: int, attempt: int = 0) -> np.random.Generator:
    """The generator of image ``index`` drawn with ``seed``; independent of every other image."""
    return np.random.default_rng([int(seed), int(index), int(attempt)])


def plan_scene(rng: np.random.Generator, cfg: SyntheticConfig) -> ScenePlan:
    """Draw the classes, placement and background family of one image.

    The first object is placed freely; each further one, with probability ``p_touch``, takes a class
    other than that of a random earlier object and is placed touching or overlapping it, otherwise it
    gets a random class and a place that avoids earlier objects if a few tries find one.
    """
    h, w = cfg.height, cfg.width
    side = min(h, w)
    n = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    objects: list[ObjectPlan] = []
    for j in range(n):
        radius = float(rng.uniform(cfg.size_min, cfg.size_max) * side)
        aspect = float(rng.uniform(0.5, 0.9))
        angle = float(rng.uniform(0, 2 * np.pi))
        thin = bool(rng.random() < cfg.p_thin)
        camo = bool(rng.random() < cfg.p_camouflage)
        touches = -1
        if j > 0 and rng.random() < cfg.p_touch:
            touches = int(rng.integers(j))
            anchor = objects[touches]
            others = [c for c in cfg.classes if c != anchor.cls]
            cls = int(others[int(rng.integers(len(others)))])
            direction = rng.uniform(0, 2 * np.pi)
            reach = anchor.radius * (1 + anchor.aspect) / 2 + radius * (1 + aspect) / 2
            dist = reach * rng.uniform(0.55, 0.95)
            cx = float(np.clip(anchor.cx + dist * np.cos(direction), 0, w - 1))
            cy = float(np.clip(anchor.cy + dist * np.sin(direction), 0, h - 1))
        else:
            cls = int(cfg.classes[int(rng.integers(len(cfg.classes)))])
            cx, cy = _free_position(rng, objects, radius, w, h)
        objects.append(ObjectPlan(cls, cx, cy, radius, aspect, angle, touches, thin, camo))
    if rng.random() < cfg.p_context:
        background = context_family(cfg, objects[0].cls)
    else:
        background = FAMILIES[int(rng.integers(len(FAMILIES)))]
    return ScenePlan(background, tuple(objects))


def _free_position(rng: np.random.Generator, objects: list[ObjectPlan], radius: float, w: int, h: int,
                   tries: int = 10) -> tuple[float, float]:
    """A centre inside the central 80 % of the image away from ``objects``; the last try if none is."""
    for _ in range(tries):
        cx, cy = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h
        if all(np.hypot(cx - o.cx, cy - o.cy) > radius + o.radius for o in objects):
            break
    return float(cx), float(cy)


# ----------------------------------------------------------------------------------------------------
# Texture primitives. All return float32 arrays; colours are RGB in [0, 1].


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    """An RGB colour (3,) float32 in [0, 1] from hue (wrapped), saturation and value in [0, 1]."""
    return np.array(colorsys.hsv_to_rgb(h % 1.0, float(np.clip(s, 0, 1)), float(np.clip(v, 0, 1))),
                    dtype=np.float32)


def smooth_noise(rng: np.random.Generator, h: int, w: int, cell_y: float, cell_x: float | None = None
                 ) -> np.ndarray:
    """Value noise: a random grid with one value per ``cell`` pixels, cubic-upsampled to (h, w).

    Returns (h, w) float32, roughly zero mean and unit variance. Unequal cells give streaks.
    """
    cell_x = cell_y if cell_x is None else cell_x
    gh = max(2, int(np.ceil(h / max(cell_y, 1.0))) + 1)
    gw = max(2, int(np.ceil(w / max(cell_x, 1.0))) + 1)
    grid = rng.standard_normal((gh, gw), dtype=np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def fbm(rng: np.random.Generator, h: int, w: int, cell: float, octaves: int = 3) -> np.ndarray:
    """Fractal value noise: ``octaves`` of :func:`smooth_noise` at halving cells and amplitudes.

    Returns (h, w) float32, roughly zero mean and unit variance.
    """
    out = np.zeros((h, w), np.float32)
    total = 0.0
    for k in range(octaves):
        amp = 0.5 ** k
        out += amp * smooth_noise(rng, h, w, max(cell / 2 ** k, 2.0))
        total += amp
    return out / total


def grain(rng: np.random.Generator, h: int, w: int, sigma: float, colour: bool = False) -> np.ndarray:
    """Per-pixel Gaussian grain: (h, w, 3) float32 if ``colour`` else (h, w, 1), std ``sigma``."""
    return rng.standard_normal((h, w, 3 if colour else 1), dtype=np.float32) * np.float32(sigma)


def _coords(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates: (h, 1) and (1, w) float32 for broadcasting."""
    return (np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :])


def _jitter(rng: np.random.Generator, h: float, s: float, v: float, dh: float = 0.03, ds: float = 0.1,
            dv: float = 0.1) -> np.ndarray:
    """:func:`_hsv` of a colour jittered uniformly by +-dh, +-ds, +-dv."""
    return _hsv(h + rng.uniform(-dh, dh), s + rng.uniform(-ds, ds), v + rng.uniform(-dv, dv))


# ----------------------------------------------------------------------------------------------------
# Background families: each (rng, h, w) -> (h, w, 3) float32 RGB, roughly in [0, 1].


def _bg_sky(rng, h, w):
    """Blue-to-pale vertical gradient with soft white clouds (smooth noise)."""
    y, _ = _coords(h, w)
    top, bottom = _jitter(rng, 0.58, 0.5, 0.85), _jitter(rng, 0.56, 0.15, 0.95, ds=0.05, dv=0.04)
    t = (y / max(h - 1, 1))[..., None]
    base = top * (1 - t) + bottom * t
    cloud = np.clip((fbm(rng, h, w, min(h, w) / 3) - 0.3) * 1.2, 0, 0.85)[..., None]
    return base * (1 - cloud) + cloud * np.float32(0.97) + grain(rng, h, w, 0.01)


def _bg_water(rng, h, w):
    """Blue water: noise-warped horizontal waves with bright glints and slow streaks."""
    y, x = _coords(h, w)
    base = _jitter(rng, 0.57, 0.7, 0.5)
    period = max(3.0, h / rng.uniform(10, 20))
    slope = rng.uniform(-0.15, 0.15)
    waves = np.sin(2 * np.pi * (y + slope * x) / period + 2.5 * fbm(rng, h, w, w / 4))
    shade = 1 + 0.2 * waves + 0.15 * smooth_noise(rng, h, w, max(h / 20, 2), max(w / 3, 2))
    glint = np.clip(waves - 0.85, 0, None) * 2.0
    return base * shade[..., None] + glint[..., None] + grain(rng, h, w, 0.015)


def _bg_grass(rng, h, w):
    """Green grass: vertical streak noise (blades) over patchy fractal noise and grain."""
    base = _jitter(rng, 0.27, 0.65, 0.5)
    blades = smooth_noise(rng, h, w, max(h / 40, 2), 1.5)
    patches = fbm(rng, h, w, min(h, w) / 4)
    return base * (1 + 0.22 * blades + 0.15 * patches)[..., None] + grain(rng, h, w, 0.03)


def _bg_road(rng, h, w):
    """Grey asphalt: strong grain and blotches with one or two dashed lane markings."""
    y, x = _coords(h, w)
    grey = np.float32(rng.uniform(0.3, 0.45))
    img = np.full((h, w, 3), grey, np.float32) * (1 + 0.1 * fbm(rng, h, w, min(h, w) / 5))[..., None]
    img += grain(rng, h, w, 0.06)
    paint = _hsv(0.14, 0.8, 0.9) if rng.random() < 0.5 else np.full(3, 0.92, np.float32)
    angle = rng.uniform(-0.3, 0.3)
    c, s = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    across = -x * s + y * c
    along = x * c + y * s
    width = max(1.5, h / 60)
    dash = max(4.0, w / 8)
    for offset in rng.uniform(0.2, 0.8, size=int(rng.integers(1, 3))) * h:
        line = (np.abs(across - offset) < width) & ((along % dash) < dash * 0.6)
        img[line] = paint
    return img


def _bg_indoor(rng, h, w):
    """Wooden floor or panelling: warped vertical grain rings and plank seams."""
    y, x = _coords(h, w)
    base = _jitter(rng, 0.08, 0.45, 0.65)
    period = max(3.0, w / rng.uniform(20, 35))
    rings = np.sin(2 * np.pi * x / period + 4 * fbm(rng, h, w, h / 2))
    plank = max(8.0, w / rng.uniform(5, 8))
    seams = ((x % plank) < max(1.0, w / 250)).astype(np.float32)
    shade = 1 + 0.12 * rings - 0.35 * seams
    return base * shade[..., None] + grain(rng, h, w, 0.02)


def _bg_foliage(rng, h, w):
    """Foliage: blotches of a dark and a light green mixed by fractal noise, colour grain."""
    dark, light = _jitter(rng, 0.3, 0.7, 0.25), _jitter(rng, 0.25, 0.6, 0.55)
    m = 1 / (1 + np.exp(-4 * fbm(rng, h, w, max(min(h, w) / 10, 3))))
    return dark * (1 - m[..., None]) + light * m[..., None] + grain(rng, h, w, 0.03, colour=True)


def _bg_sand(rng, h, w):
    """Sand: pale tan with gentle diagonal dunes and fine grain."""
    y, x = _coords(h, w)
    base = _jitter(rng, 0.11, 0.35, 0.8)
    period = max(4.0, h / rng.uniform(4, 8))
    dunes = np.sin(2 * np.pi * (y + 0.3 * x) / period + 3 * fbm(rng, h, w, min(h, w) / 2))
    return base * (1 + 0.08 * dunes)[..., None] + grain(rng, h, w, 0.04)


def _bg_brick(rng, h, w):
    """Brick wall: staggered bricks of varying tone with mortar joints."""
    y, x = _coords(h, w)
    brick = _jitter(rng, 0.03, 0.6, 0.55)
    mortar = _jitter(rng, 0.1, 0.1, 0.75, ds=0.05)
    bh = max(4.0, h / rng.uniform(9, 14))
    bw = bh * rng.uniform(2.2, 3.0)
    row = np.floor(y / bh)
    xs = x + (row % 2) * bw / 2
    col = np.floor(xs / bw).astype(np.int64)
    tone = rng.uniform(0.8, 1.15, size=(int(row.max()) + 1, int(col.max()) + 1)).astype(np.float32)
    img = brick * tone[row.astype(np.int64), col][..., None]
    gap = max(1.0, bh / 8)
    joints = ((y % bh) < gap) | ((xs % bw) < gap)
    img = np.where(joints[..., None], mortar, img)
    return img + grain(rng, h, w, 0.03)


_BACKGROUNDS: dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    "sky": _bg_sky, "foliage": _bg_foliage, "water": _bg_water, "road": _bg_road,
    "indoor": _bg_indoor, "grass": _bg_grass, "sand": _bg_sand, "brick": _bg_brick,
}


def draw_background(rng: np.random.Generator, family: str, h: int, w: int) -> np.ndarray:
    """A textured background of ``family`` (one of :data:`FAMILIES`).

    Returns (h, w, 3) float32 RGB, clipped to [0, 1].
    """
    if family not in _BACKGROUNDS:
        raise ValueError(f"unknown background family {family!r}; known: {FAMILIES}")
    return np.clip(_BACKGROUNDS[family](rng, h, w), 0, 1).astype(np.float32)


# ----------------------------------------------------------------------------------------------------
# Objects.


def class_style(cfg: SyntheticConfig, cls: int) -> tuple[np.ndarray, np.ndarray, int, float]:
    """The appearance of class ``cls``'s discriminative part; fixed per position in ``cfg.classes``.

    Returns
    -------
    bright, dark : (3,) float32 RGB in [0, 1], the two colours of the pattern (hues evenly spaced
        over the classes).
    kind : int, 0 stripes, 1 checker, 2 dots, 3 rings.
    tilt : float, radians, orientation of the pattern relative to the object.
    """
    i = cfg.classes.index(cls)
    hue = i / len(cfg.classes)
    return _hsv(hue, 0.9, 0.95), _hsv(hue + 0.5, 0.7, 0.25), i % 4, (i // 4) * np.pi / 4


def _part_pattern(kind: int, u: np.ndarray, v: np.ndarray, period: float) -> np.ndarray:
    """Binary pattern (float32 0/1) of ``kind`` over local coordinates ``u, v`` (pixels)."""
    if kind == 0:
        return (np.sin(2 * np.pi * u / period) > 0).astype(np.float32)
    if kind == 1:
        return ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
    if kind == 2:
        du, dv = u % period - period / 2, v % period - period / 2
        return (du * du + dv * dv < (0.32 * period) ** 2).astype(np.float32)
    return (np.sin(2 * np.pi * np.sqrt(u * u + v * v) / period) > 0).astype(np.float32)


def body_polygon(rng: np.random.Generator, obj: ObjectPlan) -> np.ndarray:
    """Outline of a body: a rotated ellipse with random low-frequency wobble.

    Returns (N, 2) float32 image coordinates (x, y).
    """
    phi = np.linspace(0, 2 * np.pi, _SHAPE_POINTS, endpoint=False)
    k = np.arange(2, 5)[:, None]
    amp = rng.uniform(0, 0.08, size=(3, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(3, 1))
    r = 1 + (amp * np.cos(k * phi + phase)).sum(0)
    lx, ly = obj.radius * r * np.cos(phi), obj.radius * obj.aspect * r * np.sin(phi)
    return _to_image(obj, lx, ly)


def _to_image(obj: ObjectPlan, lx: np.ndarray, ly: np.ndarray) -> np.ndarray:
    """Object-local (x along the major axis) to image coordinates: (N, 2) float32."""
    c, s = np.cos(obj.angle), np.sin(obj.angle)
    return np.stack([obj.cx + c * lx - s * ly, obj.cy + s * lx + c * ly], axis=1).astype(np.float32)


def thin_polylines(rng: np.random.Generator, obj: ObjectPlan) -> list[np.ndarray]:
    """Two to four thin limbs (leg, antenna, mast) leaving the body away from the part tip.

    Each limb has a knee: a polyline of 3 points, (3, 2) float32 image coordinates.
    """
    limbs = []
    for _ in range(int(rng.integers(2, 5))):
        phi = rng.uniform(np.pi / 3, 5 * np.pi / 3)
        start = np.array([obj.radius * 0.85 * np.cos(phi), obj.radius * obj.aspect * 0.85 * np.sin(phi)])
        out = np.arctan2(np.sin(phi), obj.aspect * np.cos(phi)) + rng.uniform(-0.4, 0.4)
        length = obj.radius * rng.uniform(0.6, 1.1)
        knee = start + 0.55 * length * np.array([np.cos(out), np.sin(out)])
        bend = out + rng.uniform(-0.9, 0.9)
        tip = knee + 0.45 * length * np.array([np.cos(bend), np.sin(bend)])
        pts = np.stack([start, knee, tip])
        limbs.append(_to_image(obj, pts[:, 0], pts[:, 1]))
    return limbs


def _fill(shape: tuple[int, int], polygon: np.ndarray) -> np.ndarray:
    """Rasterise a filled polygon (N, 2) float at 1/16 px precision: (h, w) uint8 in {0, 1}."""
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(polygon * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return m


def _soft(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Blur a {0, 1} mask into an alpha (h, w) float32 in [0, 1]; ``sigma`` 0 returns it as is."""
    m = mask.astype(np.float32)
    return cv2.GaussianBlur(m, (0, 0), sigma) if sigma > 0 else m


def draw_object(rng: np.random.Generator, cfg: SyntheticConfig, obj: ObjectPlan, canvas: np.ndarray
                ) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray, np.ndarray]:
    """Render one object over the current ``canvas`` (read only, for the camouflage colour).

    The shapes are rasterised over the whole image; colours and alpha are computed only inside the
    object's bounding box (padded for the blur), which keeps the cost proportional to its size.

    Parameters
    ----------
    canvas : (H, W, 3) float32 RGB in [0, 1], the image so far.

    Returns
    -------
    box : (rows, cols) slices of the image that the other outputs cover; (h, w) is their size.
    rgb : (h, w, 3) float32 RGB in [0, 1], the object's appearance (meaningful where alpha > 0).
    alpha : (h, w) float32 in [0, 1], coverage with soft edges (the ground truth is alpha >= 0.5).
    thin : (h, w) bool, the thin structures outside body and part (hard, before blurring).
    """
    h, w = canvas.shape[:2]
    body = _fill((h, w), body_polygon(rng, obj))
    tip = _to_image(obj, np.array([obj.radius * 0.9]), np.array([0.0]))[0]
    part_r = max(obj.radius * cfg.part_size, 1.5)
    part = np.zeros((h, w), np.uint8)
    cv2.ellipse(part, (int(round(tip[0] * 16)), int(round(tip[1] * 16))),
                (int(round(part_r * 16)), int(round(part_r * 0.85 * 16))), float(np.degrees(obj.angle)),
                0, 360, 1, -1, cv2.LINE_8, 4)
    limbs = np.zeros((h, w), np.uint8)
    if obj.thin:
        pts = [np.round(p * 16).astype(np.int32) for p in thin_polylines(rng, obj)]
        cv2.polylines(limbs, pts, False, 1, thickness=cfg.thin_px, lineType=cv2.LINE_8, shift=4)
    shape = np.maximum(np.maximum(body, part), limbs)
    box = _padded_box(shape, int(np.ceil(3 * cfg.edge_blur)) + 2)
    body, part, limbs, shape = body[box], part[box], limbs[box], shape[box]
    bh, bw = shape.shape

    colour = _hsv(rng.uniform(0, 1), rng.uniform(0.15, 0.5), rng.uniform(0.35, 0.8))
    if obj.camouflage and body.any():
        under = canvas[box][body.astype(bool)].mean(0)
        t = np.float32(rng.uniform(0.6, 0.85))
        colour = (1 - t) * colour + t * under
    shading = 1 + 0.12 * fbm(rng, bh, bw, max(obj.radius / 2, 2.0), octaves=2)
    rgb = colour * shading[..., None] + grain(rng, bh, bw, 0.015)

    limb_colour = colour * np.float32(rng.uniform(0.55, 0.85))
    rgb = np.where((limbs > body)[..., None], limb_colour, rgb)

    bright, dark, kind, tilt = class_style(cfg, obj.cls)
    yy, xx = _coords(bh, bw)
    a = obj.angle + tilt
    dx, dy = xx - np.float32(tip[0] - box[1].start), yy - np.float32(tip[1] - box[0].start)
    u = dx * np.float32(np.cos(a)) + dy * np.float32(np.sin(a))
    v = -dx * np.float32(np.sin(a)) + dy * np.float32(np.cos(a))
    pattern = _part_pattern(kind, u, v, max(part_r / 1.6, 3.0))[..., None]
    part_rgb = bright * pattern + dark * (1 - pattern)
    part_alpha = _soft(part, 0.7)[..., None]
    rgb = rgb * (1 - part_alpha) + part_rgb * part_alpha

    alpha = _soft(shape, cfg.edge_blur)
    thin = (limbs > 0) & (body == 0) & (part == 0)
    return box, np.clip(rgb, 0, 1), alpha, thin


def _padded_box(mask: np.ndarray, pad: int) -> tuple[slice, slice]:
    """Row and column slices of the bounding box of ``mask > 0`` grown by ``pad``, within the image."""
    x, y, bw, bh = cv2.boundingRect(mask)
    if bw == 0 or bh == 0:
        return slice(0, 0), slice(0, 0)
    h, w = mask.shape
    return (slice(max(y - pad, 0), min(y + bh + pad, h)), slice(max(x - pad, 0), min(x + bw + pad, w)))


def void_band(label: np.ndarray, border_px: int) -> np.ndarray:
    """Pixels within a band of width ``border_px`` centred on boundaries between label values.

    Parameters
    ----------
    label : (H, W) integer label map.

    Returns
    -------
    (H, W) bool; all False when ``border_px`` is 0.
    """
    h, w = label.shape
    edge = np.zeros((h, w), np.uint8)
    if border_px <= 0:
        return edge.astype(bool)
    dx = label[:, 1:] != label[:, :-1]
    dy = label[1:, :] != label[:-1, :]
    edge[:, :-1] |= dx
    edge[:-1, :] |= dy
    if border_px > 1:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (border_px, border_px))
        edge = cv2.dilate(edge, kernel)
    return edge.astype(bool)


def render_image(rng: np.random.Generator, cfg: SyntheticConfig, plan: ScenePlan
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Draw the background and the objects of ``plan`` in order and build the VOC-style mask.

    Returns
    -------
    image : (H, W, 3) uint8 RGB.
    mask : (H, W) uint8: the class of the top object where its alpha >= 0.5, else 0; then 255 on the
        void band of ``border_px`` around label boundaries, except on visible thin structures.
    """
    h, w = cfg.height, cfg.width
    canvas = draw_background(rng, plan.background, h, w)
    label = np.zeros((h, w), np.uint8)
    thin_top = np.zeros((h, w), bool)
    for obj in plan.objects:
        box, rgb, alpha, thin = draw_object(rng, cfg, obj, canvas)
        a = alpha[..., None]
        canvas[box] = canvas[box] * (1 - a) + rgb * a
        inside = alpha >= 0.5
        label[box][inside] = obj.cls
        thin_top[box][inside] = thin[inside]
    band = void_band(label, cfg.border_px) & ~(thin_top & (label > 0))
    mask = label.copy()
    mask[band] = IGNORE_INDEX
    image = np.round(np.clip(canvas, 0, 1) * 255).astype(np.uint8)
    return image, mask


def make_example(cfg: SyntheticConfig, seed: int, index: int) -> Example:
    """Plan and render image ``index`` of the split drawn with ``seed``.

    Scenes whose mask has no foreground label (every object hidden or swallowed by the void band,
    possible only at tiny sizes) are redrawn from the next attempt's generator.
    """
    for attempt in range(_MAX_ATTEMPTS):
        rng = image_rng(seed, index, attempt)
        plan = plan_scene(rng, cfg)
        image, mask = render_image(rng, cfg, plan)
        labels = labels_from_mask(mask, len(VOC_CLASSES))
        if labels:
            return Example(image, mask, labels, plan)
    raise ValueError(
        f"synthetic image {index} (seed {seed}) has no visible object after {_MAX_ATTEMPTS} attempts: "
        f"objects of radius >= {cfg.size_min} x {min(cfg.width, cfg.height)} px are lost in a void band "
        f"of {cfg.border_px} px; raise width/height or size_min, or lower border_px.")


def image_id(split: str, index: int) -> str:
    """The image id of ``index`` in ``split``, e.g. ``syn_train_000123``."""
    return f"syn_{split}_{index:06d}"


def write_example(root: Path, ident: str, example: Example, jpeg_quality: int) -> None:
    """Write ``JPEGImages/<ident>.jpg`` and ``SegmentationClass/<ident>.png`` atomically."""
    with atomic_path(root / "JPEGImages" / f"{ident}.jpg") as tmp:
        Image.fromarray(example.image).save(tmp, format="JPEG", quality=int(jpeg_quality))
    write_label_png(root / "SegmentationClass" / f"{ident}.png", example.mask)


def _progress(iterable, total: int, desc: str, enabled: bool):
    """Wrap ``iterable`` in a tqdm bar on stderr when ``enabled`` and tqdm is installed."""
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, total=total, desc=desc, file=sys.stderr)


def _remove_stale(root: Path, keep: set[str]) -> None:
    """Delete earlier ``syn_*`` images and masks under ``root`` whose ids are not in ``keep``."""
    for sub, ext in (("JPEGImages", ".jpg"), ("SegmentationClass", ".png")):
        for path in (root / sub).glob(f"syn_*{ext}"):
            if path.stem not in keep:
                path.unlink()


def generate(root, cfg: SyntheticConfig, progress: bool = True) -> dict[str, int]:
    """Write the synthetic dataset in VOC layout under ``root``.

    Writes ``JPEGImages/<id>.jpg``, ``SegmentationClass/<id>.png``, ``ImageSets/Segmentation/{train,
    val,train_aug}.txt`` (``train_aug`` = ``train``) and ``cls_labels.json`` (labels of every image,
    computed from its final mask), each file atomically; ``syn_*`` files of an earlier, larger run are
    removed. Returns the split sizes, e.g. ``{"train": 200, "val": 100, "train_aug": 200}``.
    """
    root = Path(root)
    splits = {"train": (cfg.seed, cfg.n_train), "val": (cfg.val_seed, cfg.n_val)}
    ids = {split: [image_id(split, i) for i in range(n)] for split, (_, n) in splits.items()}
    _remove_stale(root, {i for split_ids in ids.values() for i in split_ids})
    labels: dict[str, list[int]] = {}
    for split, (seed, n) in splits.items():
        for index in _progress(range(n), n, f"synthetic {split}", progress):
            example = make_example(cfg, seed, index)
            ident = ids[split][index]
            write_example(root, ident, example, cfg.jpeg_quality)
            labels[ident] = example.labels
    write_split(root, "train", ids["train"])
    write_split(root, "val", ids["val"])
    write_split(root, "train_aug", ids["train"])
    write_cls_labels(root, labels)
    return {"train": cfg.n_train, "val": cfg.n_val, "train_aug": cfg.n_train}
