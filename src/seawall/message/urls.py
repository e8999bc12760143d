"""URLs in text and HTML: found (bare and obfuscated ones too), normalised, deduplicated.

Finding is linear on hostile input: candidates are located with ``str.find`` and
literal-led regexes, then grown with possessive patterns anchored at the hit, and the
scan resumes after each candidate, so no character is examined more than a few times.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Sequence
from urllib.parse import unquote

from seawall.message.hosts import check_host, domain_of, known_tld
from seawall.message.model import Url

__all__ = ["collect_urls", "find_urls", "normalize_url"]

_SCHEMES = {"http": "http", "https": "https", "ftp": "ftp", "hxxp": "http", "hxxps": "https"}
_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21}

# Finding candidates in text.
_SCHEME_BEFORE = re.compile(r"(?:h(?:tt|xx)ps?|ftp)(?::|\[:\])\Z", re.IGNORECASE)
_URL_TAIL = re.compile(r"[^\s<>\"'`]*+")
_DOT_WORD = re.compile(r"\.[^\W\d_][\w-]++")  # ".com", ".example": a host may end here
_HOST_FORWARD = re.compile(r"(?:\.[\w-]++)*+")
_HOST_BACKWARD = re.compile(r"[\w-]*+(?:\.[\w-]++)*+")  # applied to reversed text
_AFTER_HOST = re.compile(r"(?::\d{1,5}(?!\w))?(?:[/?#][^\s<>\"'`]*+)?")
_OBFUSCATED = re.compile(
    r"(?<![\w.@/:\])}-])[^\W_][\w-]*+(?:(?:\.|\[\.\]|\(\.\)|\[dot\]|\(dot\)|\{\.\})[\w-]++)++"
    r"(?::\d{1,5})?(?:/[^\s<>\"'`]*+)?",
    re.IGNORECASE,
)
_NOT_BEFORE_BARE = frozenset("@./:\\-_=%&?#+~")
# TLDs that are also file extensions: "setup.py" alone is not a link, "setup.py/x" is.
_FILE_LIKE_TLDS = frozenset({"zip", "mov", "py", "sh", "md", "rs", "so", "cc", "ps", "pm"})
_TRAILING = ".,;:!?*'\")]}>"
_MAX_URL_CHARS = 4096

# Normalising.
_CONTROL_WS = re.compile(r"[\t\n\r]")
_AUTHORITY_END = re.compile(r"[/?#\\]")
_SEPARATORS = re.compile(r"\[\.\]|\(\.\)|\[dot\]|\(dot\)|\{\.\}", re.IGNORECASE)
_PLAIN = re.compile(r"(https?)://([a-z0-9_-]++(?:\.[a-z0-9_-]++)*+)(/[^\s\\]*+)?\Z")


def collect_urls(
    sources: Iterable[tuple[Sequence[tuple[str, str, str | None]], str]], max_urls: int
) -> tuple[Url, ...]:
    """The distinct URLs of ``(links, text)`` pairs, links first, at most ``max_urls``.

    ``links`` are ``(url, source, link text)`` from HTML.  A later copy of a URL only
    replaces an earlier one to add the link text it lacked.  At most ten candidates per
    kept URL are examined, which bounds the time a message stuffed with links can take.
    """
    found: dict[str, Url] = {}
    budget = max_urls * 10
    for links, text in sources:
        for raw, source, link_text in links:
            if budget <= 0 or len(found) >= max_urls:
                return tuple(found.values())
            budget -= 1
            _keep(found, normalize_url(raw, source, link_text))
        for raw, source in find_urls(text, budget):
            if len(found) >= max_urls:
                return tuple(found.values())
            budget -= 1
            _keep(found, normalize_url(raw, source))
    return tuple(found.values())


def _keep(found: dict[str, Url], url: Url | None) -> None:
    if url is None:
        return
    known = found.get(url.url)
    if known is None or (url.link_text and not known.link_text):
        found[url.url] = url


def find_urls(text: str, limit: int) -> Iterator[tuple[str, str]]:
    """Yield ``(candidate, source)`` for URLs written in ``text``, at most ``limit``.

    ``source`` is ``"text"`` (with a scheme), ``"bare"`` (a domain without one, such as
    ``www.example.com`` or ``example.com/path``) or ``"obfuscated"`` (``hxxp://``,
    ``example[.]com``).  Candidates still need :func:`normalize_url`.
    """
    count = 0
    pos = 0
    slash = text.find("//")
    dot = _DOT_WORD.search(text)
    while count < limit and (slash >= 0 or dot is not None):
        count += 1
        if slash >= 0 and (dot is None or slash < dot.start()):
            head = text[max(0, slash - 8) : slash]
            scheme = _SCHEME_BEFORE.search(head)
            if scheme is None:
                pos = slash + 2
            else:
                start = slash - len(head) + scheme.start()
                pos = _URL_TAIL.match(text, slash + 2).end()  # type: ignore[union-attr]
                yield _trim(text[start:pos]), "text"
        else:
            assert dot is not None
            pos = _HOST_FORWARD.match(text, dot.end()).end()  # type: ignore[union-attr]
            found = _bare_domain(text, dot.start(), pos)
            if found is not None:
                pos = found[1]
                yield found[0], "bare"
        if 0 <= slash < pos:
            slash = text.find("//", pos)
        if dot is not None and dot.start() < pos:
            dot = _DOT_WORD.search(text, pos)
    if count < limit and ("[" in text or "(" in text or "{" in text) and _SEPARATORS.search(text):
        for match in _OBFUSCATED.finditer(text):
            candidate = match.group()
            if count >= limit:
                break
            count += 1
            if _SEPARATORS.search(candidate):
                yield _trim(candidate), "obfuscated"


def _bare_domain(text: str, dot: int, host_end: int) -> tuple[str, int] | None:
    """The domain around the ``.`` at ``dot`` (host ends at ``host_end``) and where it ends."""
    tld = text[text.rfind(".", dot, host_end) + 1 : host_end]
    # "end.Start" is a missing space, not a host name: TLDs in text are in one case.
    if not (tld.islower() or tld.isupper()) or not known_tld(tld) or dot == 0:
        return None
    window = text[dot - 1 : dot - 255 : -1] if dot > 254 else text[dot - 1 :: -1]
    back = _HOST_BACKWARD.match(window).end()  # type: ignore[union-attr]
    start = dot - back
    if back == 0 or back >= 254:
        return None
    if start > 0 and (text[start - 1] in _NOT_BEFORE_BARE or text[start - 1].isalnum()):
        return None  # an address, a path, or a host too long to be one
    host = text[start:host_end]
    if tld.isupper() and not host.isupper():
        return None
    end = _AFTER_HOST.match(text, host_end).end()  # type: ignore[union-attr]
    if end == host_end and tld.lower() in _FILE_LIKE_TLDS and host[:4].lower() != "www.":
        return None
    return _trim(text[start:end]), end


def _trim(candidate: str) -> str:
    """Drop punctuation that ends the sentence rather than the URL; keep balanced ")"."""
    candidate = candidate[:_MAX_URL_CHARS]
    opened = candidate.count("(")
    closed = candidate.count(")")
    while candidate and candidate[-1] in _TRAILING:
        if candidate[-1] == ")":
            if closed <= opened:
                break
            closed -= 1
        candidate = candidate[:-1]
    return candidate


def normalize_url(raw: str, source: str, link_text: str | None = None) -> Url | None:
    """A :class:`Url` for ``raw``, or None when it is not an http(s)/ftp URL with a host.

    >>> normalize_url("hxxp://Example[.]COM:80/a", "text").url
    'http://example.com/a'
    """
    if len(raw) + len(link_text or "") <= _CACHED_CHARS:
        return _normalize_cached(raw, source, link_text)
    return _normalize(raw, source, link_text)


def _normalize(raw: str, source: str, link_text: str | None) -> Url | None:
    s = raw.strip(" \x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f\x1f")
    plain = _PLAIN.match(s)
    if plain is not None and source != "obfuscated":
        # Most links: lower-case http(s), a DNS name, no port, nothing to undo.
        host = plain.group(2)
        if not host[-1].isdigit() and "xn--" not in host and len(host) <= 253:
            return Url(
                url=s if plain.group(3) else s + "/",
                scheme=plain.group(1),
                host=host,
                domain=domain_of(host),
                is_ip=False,
                source=source,
                link_text=link_text,
            )
    if "\t" in s or "\n" in s or "\r" in s:
        s = _CONTROL_WS.sub("", s)
    scheme, rest = _split_scheme(s)
    if scheme is None:
        if source not in ("bare", "obfuscated"):
            return None
        scheme, rest = "http", s
    elif scheme.startswith("hxx") or "[:]" in s[:9]:
        source = "obfuscated"
    scheme = _SCHEMES[scheme]
    cut = _AUTHORITY_END.search(rest)
    authority, path = (rest[: cut.start()], rest[cut.start() :]) if cut else (rest, "")
    userinfo, _, hostport = authority.rpartition("@")
    if "%" in hostport:
        # A link's host (or port) in percent-escapes ("http://%31%39%35%2E...:%38%37/"): a
        # browser follows it, and no mail program writes one; it is there to hide an
        # address.  (Written out in text, it is more often quoted than clicked.)
        try:
            hostport = unquote(hostport, errors="strict")
        except UnicodeDecodeError:
            return None
        source = "obfuscated" if source == "href" else source
    host, port = _split_port(hostport)
    if port is None:
        return None
    if ("[" in host or "(" in host or "{" in host) and _SEPARATORS.search(host):
        host = _SEPARATORS.sub(".", host)
        source = "obfuscated" if source in ("text", "bare") else source
    host = host.lower().rstrip(".")
    built = check_host(host)
    if built is None:
        return None
    host, url_host, is_ip = built
    if port == _DEFAULT_PORTS[scheme]:
        port = 0
    if path.startswith("\\"):
        path = "/" + path[1:]
    elif not path.startswith("/"):
        path = "/" + path
    url = f"{scheme}://{userinfo + '@' if userinfo else ''}{url_host}{f':{port}' if port else ''}"
    return Url(
        url=url + path,
        scheme=scheme,
        host=host,
        domain=host if is_ip else domain_of(host),
        is_ip=is_ip,
        source=source,
        link_text=link_text,
    )


# Campaigns and list footers repeat the same links; long ones are not kept (memory bound).
_normalize_cached = functools.lru_cache(maxsize=8192)(_normalize)
_CACHED_CHARS = 512


def _split_scheme(s: str) -> tuple[str | None, str]:
    """``("http", rest)`` for ``http://rest`` (also ``hxxp[:]//``, ``//rest``), else (None, s)."""
    slashes = s.find("//", 0, 10)
    if slashes == 0:
        return "http", s[2:]
    if slashes < 0:
        return None, s
    if s[slashes - 1] == ":":
        name = s[: slashes - 1].lower()
    elif s[slashes - 3 : slashes] == "[:]":
        name = s[: slashes - 3].lower()
    else:
        return None, s
    return (name, s[slashes + 2 :]) if name in _SCHEMES else (None, s)


def _split_port(hostport: str) -> tuple[str, int | None]:
    """``(host, port)``; port 0 when absent, None when it is not a port number."""
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0:
            return hostport, None
        host, rest = hostport[: close + 1], hostport[close + 1 :]
        if not rest:
            return host, 0
        if not rest.startswith(":"):
            return host, None
        digits = rest[1:]
    else:
        host, colon, digits = hostport.rpartition(":")
        if not colon:
            return hostport, 0
    if not digits:
        return host, 0
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 5 or int(digits) > 65535:
        return host, None
    return host, int(digits)
