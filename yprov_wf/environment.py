"""What the process runs in (host, Python, platform, command line), with secrets redacted.

Names that look like credentials are redacted wherever a name/value pair is captured: command-line
options (``--api-token=…``, ``--password …``) and environment variables chosen with ``env_vars``.
"""

from __future__ import annotations

import os
import platform
import re
import socket
import sys
from collections.abc import Iterable

REDACTED = "***"
_SECRET = re.compile(
    r"TOKEN|SECRET|PASSWORD|PASSWD|PWD|KEY|CREDENTIAL|AUTH|COOKIE|SESSION|PRIVATE|SIGNATURE|CERT",
    re.IGNORECASE,
)


def looks_secret(name: str) -> bool:
    """Whether a variable or option name looks like it holds a credential."""
    return bool(_SECRET.search(name))


def redact_argv(argv: Iterable[str]) -> list[str]:
    """The command line with the values of secret-looking options replaced by ``***``."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append(REDACTED)
            hide_next = False
        elif arg.startswith("-") and "=" in arg:
            name, _, val = arg.partition("=")
            out.append(f"{name}={REDACTED}" if looks_secret(name) else f"{name}={redact_url(val)}")
        elif arg.startswith("-") and looks_secret(arg):
            out.append(arg)
            hide_next = True
        elif "://" in arg and "@" in arg:  # URLs with user:password@host
            out.append(redact_url(arg))
        else:
            out.append(arg)
    return out


def redact_url(url: str) -> str:
    """``url`` with any ``user:password@`` part replaced by ``***@`` (git remotes, database URLs)."""
    return re.sub(r"://[^/@\s]*@", f"://{REDACTED}@", url)


def runtime_environment(env_vars: Iterable[str] = ()) -> dict[str, str | int]:
    """Host, Python, platform and command line, plus the chosen environment variables (redacted)."""
    info: dict[str, str | int] = {
        "host": socket.gethostname(),
        "pythonVersion": platform.python_version(),
        "platform": platform.platform(terse=True),
        "command": " ".join(redact_argv(sys.argv)),
    }
    for name in env_vars:
        if name in os.environ:
            info[f"env_{name}"] = REDACTED if looks_secret(name) else os.environ[name]
    return info
