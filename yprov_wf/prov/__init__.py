"""Records → W3C PROV documents (with the ``prov`` package), reading them back, merging, validating."""
