"""Find the adapter of a vendor: ``agent/vendors/<id>.py`` defining ``ADAPTER``, else generic."""

from __future__ import annotations

import importlib
from functools import cache

from agent.vendors.base import Adapter


@cache
def adapter_for(vendor: str | None) -> Adapter:
    from agent.vendors import generic

    if not vendor or not vendor.isidentifier():
        return generic.ADAPTER
    try:
        module = importlib.import_module(f"agent.vendors.{vendor}")
    except ModuleNotFoundError as e:
        if e.name != f"agent.vendors.{vendor}":
            raise
        return generic.ADAPTER
    return getattr(module, "ADAPTER", generic.ADAPTER)
