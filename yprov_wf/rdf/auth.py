"""HTTP authentication for SPARQL servers: credentials from the environment or netrc, Basic or Digest.

Credentials come from ``YPROV_WF_SPARQL_USER`` / ``YPROV_WF_SPARQL_PASSWORD`` or else from ``~/.netrc`` (or the
file ``$NETRC`` names) for the server's host; they are never printed, logged or written. They are sent only after
the server asks (a 401 with ``WWW-Authenticate``), in the scheme it asks for: Basic (Oxigraph behind a proxy,
Fuseki) or Digest (Virtuoso's ``/sparql-graph-crud-auth``), so a Digest server never sees the password itself.
The scheme a server chose is remembered per host and port for the rest of the process.
"""

from __future__ import annotations

import base64
import hashlib
import netrc
import os
import re
import secrets
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from yprov_wf.rdf.errors import EndpointError

USER_VAR = "YPROV_WF_SPARQL_USER"
PASSWORD_VAR = "YPROV_WF_SPARQL_PASSWORD"
HINT = f"credentials: {USER_VAR}/{PASSWORD_VAR} or ~/.netrc"

_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')
_HASHES = {"MD5": hashlib.md5, "MD5-SESS": hashlib.md5, "SHA-256": hashlib.sha256,
           "SHA-256-SESS": hashlib.sha256}


def credentials(url: str) -> tuple[str, str] | None:
    """(user, password) for ``url``'s host from the environment, else netrc; None without any."""
    user, password = os.environ.get(USER_VAR), os.environ.get(PASSWORD_VAR)
    if user is not None:
        return user, password or ""
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    if not path.is_file():
        return None
    try:
        found = netrc.netrc(str(path)).authenticators(urllib.parse.urlsplit(url).hostname or "")
    except (netrc.NetrcParseError, OSError) as exc:
        raise EndpointError(f"cannot read {path}: {type(exc).__name__}") from None
    return (found[0], found[2] or "") if found else None


@dataclass
class Challenge:
    """What a server asked for in ``WWW-Authenticate``: the scheme and, for Digest, its parameters."""

    scheme: str  # "basic" or "digest"
    params: dict[str, str] = field(default_factory=dict)
    count: int = 0  # Digest nonce count, per nonce


def parse_challenge(header: str | None) -> Challenge | None:
    """The strongest scheme offered in a ``WWW-Authenticate`` header (Digest before Basic); None if neither."""
    if not header:
        return None
    text = header.strip()
    digest = re.search(r"(?i)\bdigest\s+(.*)", text)
    if digest:
        params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
                  for m in _PARAM.finditer(digest.group(1))}
        if "nonce" in params and params.get("algorithm", "MD5").upper() in _HASHES:
            return Challenge("digest", params)
    if re.match(r"(?i)basic\b", text) or re.search(r"(?i),\s*basic\b", text):
        return Challenge("basic")
    return None


class Authenticator:
    """Builds ``Authorization`` values for the servers of one process, remembering each one's challenge."""

    def __init__(self) -> None:
        self._challenges: dict[str, Challenge] = {}
        self._lock = threading.Lock()

    def remember(self, url: str, challenge: Challenge) -> None:
        with self._lock:
            self._challenges[_authority(url)] = challenge

    def forget(self, url: str) -> None:
        with self._lock:
            self._challenges.pop(_authority(url), None)

    def header(self, method: str, url: str) -> str | None:
        """The ``Authorization`` value for a request, once the server has asked for one; None before that."""
        with self._lock:
            challenge = self._challenges.get(_authority(url))
            if challenge is None:
                return None
            found = credentials(url)
            if found is None:
                return None
            user, password = found
            if challenge.scheme == "basic":
                return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            challenge.count += 1
            return _digest(challenge, user, password, method, url)


def _authority(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _digest(challenge: Challenge, user: str, password: str, method: str, url: str) -> str:
    """An RFC 7616 Digest ``Authorization`` value (qop=auth, or the RFC 2069 form when no qop is offered)."""
    p = challenge.params
    algorithm = p.get("algorithm", "MD5")
    h = _HASHES[algorithm.upper()]

    def hexdigest(text: str) -> str:
        return h(text.encode("utf-8")).hexdigest()

    parts = urllib.parse.urlsplit(url)
    uri = parts.path + (f"?{parts.query}" if parts.query else "")
    realm, nonce = p.get("realm", ""), p["nonce"]
    cnonce = secrets.token_hex(8)
    ha1 = hexdigest(f"{user}:{realm}:{password}")
    if algorithm.upper().endswith("-SESS"):
        ha1 = hexdigest(f"{ha1}:{nonce}:{cnonce}")
    ha2 = hexdigest(f"{method}:{uri}")
    qops = [q.strip() for q in p.get("qop", "").split(",") if q.strip()]
    nc = f"{challenge.count:08x}"
    fields = {"username": user.replace("\\", "\\\\").replace('"', '\\"'), "realm": realm, "nonce": nonce,
              "uri": uri}
    if "auth" in qops:
        fields["response"] = hexdigest(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
    else:
        fields["response"] = hexdigest(f"{ha1}:{nonce}:{ha2}")
    out = ", ".join(f'{k}="{v}"' for k, v in fields.items()) + f", algorithm={algorithm}"
    if "auth" in qops:
        out += f', qop=auth, nc={nc}, cnonce="{cnonce}"'
    if "opaque" in p:
        out += f', opaque="{p["opaque"]}"'
    return "Digest " + out
