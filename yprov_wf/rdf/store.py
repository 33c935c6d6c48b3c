"""The embedded triple store: an on-disk Oxigraph (pyoxigraph) store that accumulates many workflow runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyoxigraph

from yprov_wf.rdf.export import RdfDataset, to_dataset


@dataclass(frozen=True)
class LoadResult:
    """What ``load`` did: quads read from the files, named graphs (re)placed, quads in the store after."""

    store: Path
    quads: int
    graphs: int
    total: int


def is_store(path: Path) -> bool:
    """Whether ``path`` is an Oxigraph store folder (RocksDB keeps a CURRENT file in it)."""
    return Path(path).is_dir() and (Path(path) / "CURRENT").is_file()


def open_store(path: Path | str, read_only: bool = False) -> pyoxigraph.Store:
    """Open (or create) the store at ``path``; refuses a non-empty folder that is not a store."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"store {path} is a file; give a folder for the Oxigraph store")
    if path.is_dir() and any(path.iterdir()) and not is_store(path):
        raise ValueError(f"{path} is a non-empty folder that is not an Oxigraph store")
    if read_only:
        return pyoxigraph.Store.read_only(str(path))
    return pyoxigraph.Store(str(path))


def load_dataset(store: pyoxigraph.Store, dataset: RdfDataset) -> None:
    """Put the dataset into ``store``: each of its named graphs replaces the one of the same name.

    Blank nodes are loaded as skolem IRIs derived from their content (``RdfDataset.skolemized``), so loading the
    same run twice changes nothing.
    """
    for graph in dataset.graphs:
        if store.contains_named_graph(pyoxigraph.NamedNode(graph)):
            store.remove_graph(pyoxigraph.NamedNode(graph))
    store.bulk_load(dataset.skolemized().nquads(), format=pyoxigraph.RdfFormat.N_QUADS)
    store.flush()


def load(path: Path | str, store_path: Path | str) -> LoadResult:
    """Export the PROV-JSON under ``path`` into the on-disk store at ``store_path`` (created if missing)."""
    dataset = to_dataset(Path(path))
    store = open_store(store_path)
    try:
        load_dataset(store, dataset)
        total = len(store)
    finally:
        del store
    return LoadResult(Path(store_path), len(dataset.quads), len(dataset.graphs), total)
