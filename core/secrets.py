"""Secrets in configuration values and text: find them, mask them (pure).

A secret is a value that grants access: the Helius webhook's auth header, a passphrase, and the API
keys that RPC providers put inside URLs — a query parameter (``?api-key=…``, ``?token=…``), the
userinfo (``https://user:pass@host``) or a path segment (``/v2/<key>``, ``/<uuid>``). Recordings,
logs, exports, error messages and the UI show :func:`redact_url` / :func:`redact_tree` forms, and
:class:`Redactor` scrubs the known secret strings out of any text as a last line of defence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlsplit, urlunsplit

MASK = "***"

#: config keys (the last part of the dotted path) whose whole value is a secret
SECRET_KEYS: frozenset[str] = frozenset(
    {"auth_header", "passphrase", "password", "secret", "token", "api_key", "apikey", "private_key"}
)

#: query parameter names whose value is a secret (compared lower-case, ``-`` and ``_`` ignored)
_SECRET_PARAMS = frozenset(
    {"apikey", "key", "token", "accesstoken", "auth", "authorization", "secret", "clientsecret",
     "password", "passphrase", "signature", "sig", "xapikey", "jwt", "session"}
)
# a path segment that looks like a key: long, only key characters, with both letters and digits
_TOKEN_SEGMENT = re.compile(r"^(?=[A-Za-z0-9_-]*[0-9])(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{16,}$")


def _secret_param(name: str) -> bool:
    return name.lower().replace("-", "").replace("_", "") in _SECRET_PARAMS


def _split(url: str) -> SplitResult | None:
    if "://" not in url:
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a malformed port)
    except ValueError:
        return None
    return parts


def url_secrets(url: str) -> list[str]:
    """The secret parts of ``url``: userinfo, secret query values and key-like path segments."""
    parts = _split(url)
    if parts is None:
        return []
    found: list[str] = []
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        found += [p for p in userinfo.split(":") if p]
    found += [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if v and _secret_param(k)]
    found += [s for s in parts.path.split("/") if _TOKEN_SEGMENT.match(s)]
    return found


def redact_url(url: str) -> str:
    """``url`` with its secret parts replaced by ``***`` (scheme, host, port and the rest kept, so a
    redacted REST URL still routes in a replay). Not a URL: returned unchanged."""
    parts = _split(url)
    if parts is None:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rsplit('@', 1)[1]}"
    path = "/".join(MASK if _TOKEN_SEGMENT.match(s) else s for s in parts.path.split("/"))
    query = parts.query
    if query:
        items = []
        for item in query.split("&"):
            name, sep, value = item.partition("=")
            items.append(f"{name}={MASK}" if sep and value and _secret_param(name) else item)
        query = "&".join(items)
    return urlunsplit((parts.scheme, netloc, path, query, parts.fragment))


def is_secret_key(dotted: str) -> bool:
    return dotted.rsplit(".", 1)[-1].lower() in SECRET_KEYS


def redact_value(dotted: str, value: Any) -> Any:
    """One config value as it may be shown: a secret key's value masked, URLs redacted."""
    if is_secret_key(dotted):
        return MASK if value else value
    if isinstance(value, str):
        return redact_url(value)
    if isinstance(value, list):
        return [redact_value(dotted, v) for v in value]
    if isinstance(value, Mapping):
        return redact_tree(value, dotted)
    return value


def redact_tree(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A copy of a config tree (plain builtins) with every secret masked."""
    return {k: redact_value(f"{prefix}.{k}" if prefix else k, v) for k, v in tree.items()}


def tree_secrets(tree: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Every secret string in a config tree (for :class:`Redactor`)."""
    found: list[str] = []
    for k, v in tree.items():
        dotted = f"{prefix}.{k}" if prefix else k
        values = v if isinstance(v, list) else [v]
        for item in values:
            if isinstance(item, Mapping):
                found += tree_secrets(item, dotted)
            elif isinstance(item, str) and item:
                if is_secret_key(dotted):
                    found.append(item)
                    found += item.split()[1:]  # "Bearer <token>": the token alone too
                found += url_secrets(item)
    return found


class Redactor:
    """Replaces known secret strings in text by ``***``. Secrets shorter than ``min_len`` are
    ignored (masking every "a" in a log would say more than it hides)."""

    def __init__(self, secrets: Iterable[str] = (), min_len: int = 4) -> None:
        self.min_len = min_len
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        new = {s for s in secrets if len(s) >= self.min_len} - self._secrets
        if not new:
            return
        self._secrets |= new
        # longest first, so a secret that contains another is masked whole
        ordered = sorted(self._secrets, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)


def scrub(text: str, *urls: str) -> str:
    """``text`` (an exception message, say) without the secrets of ``urls``: each URL is replaced by
    its redacted form and any of its secret parts still in the text by ``***``."""
    for url in urls:
        if url:
            text = text.replace(url, redact_url(url))
    return Redactor(s for u in urls for s in url_secrets(u))(text)
