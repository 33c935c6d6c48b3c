"""Pick the best learning rate from the evaluation scores (a plain Snakemake script: it knows nothing
of provenance; the yprov wrapper runs it inside the job's task bundle)."""

import json
from pathlib import Path

scores = [json.loads(Path(f).read_text()) for f in snakemake.input]  # noqa: F821 - set by Snakemake
best = max(scores, key=lambda s: s["accuracy"])
Path(snakemake.output[0]).write_text(json.dumps({"best": best, "all": scores}, indent=1))  # noqa: F821
print(f"best learning rate: {best['lr']} (test accuracy {best['accuracy']:.3f})")
