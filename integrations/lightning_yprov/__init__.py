"""PyTorch Lightning logger that records into yprov-wf: ``Trainer(logger=YProvLogger(...))``."""

from lightning_yprov.logger import YProvLogger, context_for

__all__ = ["YProvLogger", "context_for"]
