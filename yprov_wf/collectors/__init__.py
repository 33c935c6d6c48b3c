"""Resource collectors (system, GPU, energy, and plugins) behind one protocol and one registry.

Collectors are found through the entry-point group ``yprov_wf.collectors``; see docs/collectors.md.
Importing this package imports neither psutil, pynvml nor codecarbon.
"""

from yprov_wf.collectors.base import Collector, CollectorUnavailable
from yprov_wf.collectors.registry import GROUP, collector_factory, collector_names, refresh

__all__ = ["GROUP", "Collector", "CollectorUnavailable", "collector_factory", "collector_names", "refresh"]
