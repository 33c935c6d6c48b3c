"""Compatibility with other provenance libraries' APIs: ``yprov4ml`` (yProv4ML 1.0, 2.x and 3.x), and the
PyTorch Lightning logger under yProv4ML's name (``lightning``, imported only when asked for)."""
