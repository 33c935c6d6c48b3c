"""What the RDF export, the store and the SPARQL client raise or warn."""

from __future__ import annotations


class NamedGraphsFlattened(UserWarning):
    """A format that cannot hold named graphs (Turtle) got a dataset with task bundles: they were merged."""


class SparqlError(RuntimeError):
    """A SPARQL query failed; the message is the store's or the server's own, plainly."""


class EndpointError(RuntimeError):
    """A SPARQL server could not be reached or refused a request (the URL in it has no credentials)."""
