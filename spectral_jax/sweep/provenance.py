"""Where a record was computed: versions, device and process (stored with every record)."""

from __future__ import annotations

import os
import platform
from importlib import metadata

import jax

__all__ = ["provenance"]


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


def provenance() -> dict:
    """Package, JAX, jaxlib and Python versions; platform; device kind and count; process
    (JAX's index and count, and the operating system's id: local workers differ in it)."""
    devices = jax.local_devices()
    return {
        "spectral_jax_version": _version("spectral_jax"),
        "jax_version": jax.__version__,
        "jaxlib_version": _version("jaxlib"),
        "python_version": platform.python_version(),
        "platform": devices[0].platform,
        "device_kind": devices[0].device_kind,
        "local_device_count": len(devices),
        "process_index": jax.process_index(),
        "process_count": jax.process_count(),
        "pid": os.getpid(),
        "x64": bool(jax.config.jax_enable_x64),
    }
