"""The map-producing methods a ``{method}`` wildcard can name, as names and settings only (no torch).

The workflow reads this registry while it is parsed; ``matlabel.models`` builds the networks and losses from it.
Each method belongs to a family, which is also its config section: ``cam`` (the plain CAM loss), ``d2cam`` (D2CAM,
one loss variant of ``matlabel.losses.VARIANTS`` per method: the Table 4 ablation; the full D2CAM ``d2cam`` is
variant ``d2_ma_oe``, so Table 1's "D2CAM only" row and Table 4's last row share one trained model) and ``recam``
(ReCAM, its own loss factory).
"""
from __future__ import annotations

# method -> (family = config section, D2CAM loss variant or None)
METHODS = {
    "cam": ("cam", None),
    "d2cam": ("d2cam", "d2_ma_oe"),
    "d2cam_d2": ("d2cam", "d2"),
    "d2cam_d2_area": ("d2cam", "d2_area"),
    "d2cam_d2_ma": ("d2cam", "d2_ma"),
    "recam": ("recam", None),
}
# Table 4 row (paper's ablation) -> the method that trains it
TABLE4_METHODS = {"cam": "cam", "d2": "d2cam_d2", "d2_area": "d2cam_d2_area", "d2_ma": "d2cam_d2_ma",
                  "d2_ma_oe": "d2cam"}
# Modules that only one family runs. A rule serving several methods leaves the other families' modules out of each
# job's code hash (matlabel/codehash.py), so editing recam.py does not retrain CAM or D2CAM.
FAMILY_MODULES = {"cam": (), "d2cam": ("matlabel.d2cam", "matlabel.losses"), "recam": ("matlabel.recam",)}


def config_section(method: str) -> str:
    """The config.yaml section holding a method's training settings: its family (``cam``, ``d2cam``, ``recam``)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {sorted(METHODS)}")
    return METHODS[method][0]


def other_methods_modules(method: str) -> tuple[str, ...]:
    """The modules of the families other than ``method``'s (FAMILY_MODULES)."""
    own = config_section(method)
    return tuple(m for family, modules in FAMILY_MODULES.items() if family != own for m in modules)
