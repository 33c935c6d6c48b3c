"""One module per RDF output format, looked up by name (as prov's serializers are): ``get("trig")``.

Each module defines ``FORMAT``, an :class:`RdfFormat` whose ``write`` puts a dataset on a binary stream.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from yprov_wf.rdf.export import RdfDataset

#: format name → module holding its FORMAT
_MODULES = {"trig": "trig", "nquads": "nquads", "jsonld": "jsonld", "turtle": "turtle"}


@dataclass(frozen=True)
class RdfFormat:
    """An output format: its name, file extension, media type, whether it keeps named graphs, its writer."""

    name: str
    extension: str
    media_type: str
    keeps_graphs: bool
    write: Callable[[RdfDataset, IO[bytes]], None]


def names() -> list[str]:
    """The format names ``get`` accepts."""
    return list(_MODULES)


def get(name: str) -> RdfFormat:
    """The format called ``name``; ValueError naming the choices otherwise."""
    module = _MODULES.get(name) if isinstance(name, str) else None
    if module is None:
        raise ValueError(f"unknown RDF format {name!r}; choose from {', '.join(_MODULES)}")
    fmt: RdfFormat = importlib.import_module(f"{__name__}.{module}").FORMAT
    return fmt
