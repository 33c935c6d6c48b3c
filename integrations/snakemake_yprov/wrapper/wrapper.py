"""yprov wrapper: run the rule's unchanged Python script (``params.script``) inside its task bundle."""

from snakemake_yprov.runner import run_wrapped

run_wrapped(snakemake)  # noqa: F821 - Snakemake defines `snakemake` in every wrapper
