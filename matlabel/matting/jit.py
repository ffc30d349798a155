"""The numba kernels of the matting package are compiled lazily, on first use."""
from __future__ import annotations

_JITTED: dict = {}


def jit(kernel):
    """``kernel`` compiled by numba on first use (and cached on disk by numba), so that importing this module
    stays cheap and the kernels stay plain Python functions that tests can read."""
    if kernel not in _JITTED:
        import numba
        _JITTED[kernel] = numba.njit(cache=True, nogil=True)(kernel)
    return _JITTED[kernel]
