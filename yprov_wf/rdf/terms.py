"""The IRIs of the vocabularies the PROV-O export writes: PROV, RDF, RDFS, XSD and this project's ``ywf:``."""

from __future__ import annotations

from yprov_wf.prov.vocabulary import YWF_PREFIX, YWF_URI

PROV = "http://www.w3.org/ns/prov#"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
XSD = "http://www.w3.org/2001/XMLSchema#"
OWL = "http://www.w3.org/2002/07/owl#"
YWF = YWF_URI

#: Prefixes every PROV-JSON document may use without declaring them.
STANDARD_PREFIXES = {"prov": PROV, "xsd": XSD, "rdf": RDF, "rdfs": RDFS}

#: Prefixes written into the Turtle-family outputs (the user's own ones are added per export).
OUTPUT_PREFIXES = {"prov": PROV, "xsd": XSD, "rdfs": RDFS, YWF_PREFIX: YWF}
