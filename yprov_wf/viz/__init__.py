"""Seeing and comparing provenance: the graph as DOT/SVG (``graph``), a self-contained HTML report with
inline SVG plots (``report``), and the comparison of runs (``compare``). Nothing here is imported by
``import yprov_wf``; each module imports its heavy dependencies (graphviz, pyarrow) where used."""
