"""The project's PEP 517 build backend: setuptools, plus one static ``.pth`` in editable wheels.

The packages live in two roots (``yprov_wf/`` at the top, the engine adapters in ``integrations/``), so
setuptools' editable wheel installs them through an import hook (a ``sys.meta_path`` finder) instead of a
``.pth`` path entry. Snakemake finds logger plugins with ``pkgutil.iter_modules()``, which sees only
``sys.path`` folders: with the hook alone ``--logger yprov`` is an "invalid choice". The editable wheel
therefore also carries ``yprov_wf_integrations.pth`` naming the ``integrations/`` folder of this
checkout. Regular wheels copy every package into site-packages and are left as setuptools builds them.
"""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile
from pathlib import Path

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403 - every other hook is setuptools' own

PTH_NAME = "yprov_wf_integrations.pth"
INTEGRATIONS = Path(__file__).resolve().parent.parent / "integrations"


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):  # noqa: ANN001,ANN201
    """setuptools' editable wheel with the ``integrations/`` folder added to ``sys.path`` by a ``.pth``."""
    name = _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)
    add_pth(Path(wheel_directory) / name, PTH_NAME, f"{INTEGRATIONS}\n")
    return name


def add_pth(wheel: Path, name: str, text: str) -> None:
    """Rewrite ``wheel`` with one more top-level file ``name``, listed in its RECORD."""
    data = text.encode("utf-8")
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")
    tmp = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            content = src.read(item.filename)
            if item.filename.endswith(".dist-info/RECORD"):
                content += f"{name},sha256={digest},{len(data)}\n".encode()
            dst.writestr(item, content)
        dst.writestr(name, data)
    os.replace(tmp, wheel)
