"""SPF (RFC 7208): may this host send mail for this domain?

Our own evaluator, not pyspf: pyspf asks DNS through a blocking resolver (dnspython's or
pydns's), one question at a time, so on a worker's event loop every round trip would stall
every other message in flight, and moving it to a thread would lose what
:mod:`seawall.dnslists.client` gives every DNS user here: one TTL cache, questions already
in flight shared, retries, and a time budget that ends the wait without blocking.  So this
module parses and evaluates the record itself, over :class:`~seawall.dnslists.RecordResolver`
(TXT, A, AAAA, MX, PTR), and adds no dependency.

What it implements, section by section of RFC 7208:

- §4.3-4.5: the initial checks (a malformed or single-label domain, NXDOMAIN, no record:
  ``none``; more than one ``v=spf1`` record: ``permerror``; a DNS failure: ``temperror``);
  ``postmaster`` for a sender without a local-part.
- §4.6: the whole record is parsed before anything is evaluated, so a syntax error anywhere
  is a ``permerror``; terms are separated by spaces only; modifiers are told from mechanisms
  by a name followed by ``=``; ``redirect`` and ``exp`` at most once; unknown modifiers
  are checked as macro-strings and ignored.
- §4.6.4: at most 10 terms that query DNS (include, a, mx, ptr, exists, redirect) in the
  whole evaluation, includes and redirects within it; at most 2 void lookups (NODATA or
  NXDOMAIN for a term's query); an MX answer of more than 10 names is a ``permerror``; only
  the first 10 PTR names are checked.  Either limit also ends include and redirect loops.
- §5: every mechanism with its qualifier (``all``, ``include``, ``a``, ``mx``, ``ptr``,
  ``ip4``, ``ip6``, ``exists``), dual CIDR lengths (``a:host/24//64``), IPv4-mapped IPv6
  clients treated as IPv4 (§5), ``a`` and ``mx`` asking A or AAAA by the client's family,
  ``exists`` always A, ``ptr`` matching only validated names.
- §6: ``redirect`` when no mechanism matched (``none`` there is a ``permerror``), ``exp``
  fetched after a ``fail`` when asked for (``explain=True``), from the record that gave it.
- §7: macros ``s l o d i p v h`` (and ``c r t`` in explanations), the digit and ``r``
  transformers, delimiters, URL escaping for upper-case letters, ``%%``/``%_``/``%-``, and
  names over 253 characters cut from the left.

Results: :class:`Result` in an :class:`SpfResult` with the term that decided it.  When a
record had to come from DNS (not the cache), the first questions of its terms are sent at
once (as many as the lookup limit still allows), so its includes travel together rather
than one round trip after the other; their answers are only used, and counted, when the
term is evaluated.  A record found in the cache is taken to have its answers there too.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import ipaddress
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from seawall.dnslists.answer import Answer
from seawall.dnslists.client import RecordResolver
from seawall.dnslists.wire import RdType

IPAddress = IPv4Address | IPv6Address


class Result(enum.Enum):
    """The seven results of RFC 7208 §2.6."""

    PASS = "pass"
    FAIL = "fail"
    SOFTFAIL = "softfail"
    NEUTRAL = "neutral"
    NONE = "none"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


@dataclass(frozen=True, slots=True)
class SpfResult:
    """What ``check_host`` came to, and why.

    ``mechanism`` is the term of the checked domain's record that decided (``-all``,
    ``include:_spf.example.net``; after a ``redirect``, the term of the record redirected
    to), ``default`` when no mechanism matched (as RFC 7208 §9.1 names it), empty for
    ``none`` and the errors, which say why in ``detail``.
    """

    result: Result
    domain: str
    mechanism: str = ""
    detail: str = ""
    explanation: str = ""  # the exp= text after a fail, when the checker was asked for it
    lookups: int = 0  # terms that queried DNS (the limit is 10)
    void_lookups: int = 0  # of those, answered NODATA or NXDOMAIN (the limit is 2)


_QUALIFIERS = {"+": Result.PASS, "-": Result.FAIL, "~": Result.SOFTFAIL, "?": Result.NEUTRAL}
_COUNTED = frozenset({"include", "a", "mx", "ptr", "exists"})  # and redirect
# The first question a counted term asks (a asks A or AAAA by the client's family).
_FIRST_QUESTION = {"include": RdType.TXT, "mx": RdType.MX, "exists": RdType.A, "ptr": RdType.PTR}


class SpfSyntaxError(ValueError):
    """A record, or a macro-string in it, that RFC 7208's grammar does not allow."""


class _PermError(Exception):
    pass


class _TempError(Exception):
    pass


# --- Parsing -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Macro:
    """``%{letter digits r delimiters}``: ``digits`` 0 keeps every part."""

    letter: str  # lower case
    digits: int
    reverse: bool
    delimiters: str
    escape: bool  # an upper-case letter: URL-escape the expansion


MacroString = tuple[str | Macro, ...]


@dataclass(frozen=True, slots=True)
class Mechanism:
    qualifier: str  # "+", "-", "~", "?"
    kind: str  # all, include, a, mx, ptr, ip4, ip6, exists
    text: str  # as written, for SpfResult.mechanism
    target: MacroString | None = None  # the domain-spec, when one was given
    network: IPv4Network | IPv6Network | None = None  # ip4, ip6
    cidr4: int = 32
    cidr6: int = 128
    # ip4 and ip6 as integers, compared without ipaddress's objects: version, first, last
    span: tuple[int, int, int] = (0, 0, -1)


@dataclass(frozen=True, slots=True)
class Record:
    mechanisms: tuple[Mechanism, ...]
    redirect: MacroString | None = None
    exp: MacroString | None = None


_TOKEN = re.compile(
    r"%\{(?P<letter>[A-Za-z])(?P<digits>[0-9]*)(?P<reverse>[rR]?)(?P<delims>[.+,/_=-]*)\}"
    r"|%(?P<escape>[%_-])|(?P<literal>[^%]+)|(?P<bad>%.?)",
    re.S,
)
_ESCAPES = {"%": "%", "_": " ", "-": "%20"}
_LETTERS = frozenset("slodiphv")
_EXP_LETTERS = _LETTERS | frozenset("crt")
_VISIBLE = re.compile(r"[\x21-\x7e]*\Z")
_VISIBLE_OR_SPACE = re.compile(r"[\x20-\x7e]*\Z")
_TOPLABEL = re.compile(r"[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9]+-[A-Za-z0-9-]*[A-Za-z0-9]")
_MODIFIER = re.compile(r"([A-Za-z][A-Za-z0-9_.-]*)=(.*)\Z", re.S)
_MECHANISM = re.compile(r"([+~?-]?)([A-Za-z][A-Za-z0-9]*)(.*)\Z", re.S)
_DUAL_CIDR = re.compile(r"(.*?)(?:/(0|[1-9][0-9]?))?(?://(0|[1-9][0-9]{0,2}))?\Z", re.S)
_IP4 = re.compile(
    r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\Z"
)
_CIDR4 = re.compile(r"(?:0|[1-9][0-9]?)\Z")
_CIDR6 = re.compile(r"(?:0|[1-9][0-9]{0,2})\Z")


def macro_string(text: str, *, explanation: bool = False) -> tuple[MacroString, bool]:
    """Parse a macro-string (RFC 7208 §7.1): its parts, and whether it ends with a macro.

    In an explanation (the exp= TXT record), spaces and the macros ``c``, ``r`` and ``t``
    are allowed too.

    >>> macro_string("%{ir}.%{v}._spf.%{d2}")[0][1]
    '.'
    """
    if not (_VISIBLE_OR_SPACE if explanation else _VISIBLE).match(text):
        raise SpfSyntaxError(f"{text!r} has a character outside visible ASCII")
    letters = _EXP_LETTERS if explanation else _LETTERS
    parts: list[str | Macro] = []
    literal = ""
    ends_with_macro = False
    for token in _TOKEN.finditer(text):
        kind = token.lastgroup
        if kind == "literal":
            literal += token.group()
            ends_with_macro = False
        elif kind == "escape":
            literal += _ESCAPES[token["escape"]]
            ends_with_macro = True
        elif kind == "bad":
            raise SpfSyntaxError(f"a '%' not followed by '{{', '%', '_' or '-' in {text!r}")
        else:
            letter = token["letter"]
            if letter.lower() not in letters:
                raise SpfSyntaxError(f"no macro letter {letter!r} in {text!r}")
            digits = int(token["digits"]) if token["digits"] else 0
            if token["digits"] and digits == 0:
                raise SpfSyntaxError(f"a zero transformer in {text!r}")
            if literal:
                parts.append(literal)
                literal = ""
            parts.append(
                Macro(
                    letter.lower(),
                    min(digits, 128),
                    bool(token["reverse"]),
                    token["delims"],
                    letter.isupper(),
                )
            )
            ends_with_macro = True
    if literal:
        parts.append(literal)
    return tuple(parts), ends_with_macro


def domain_spec(text: str) -> MacroString:
    """A domain-spec: a macro-string ending with a macro or with "." and a top label."""
    if not text:
        raise SpfSyntaxError("an empty domain-spec")
    parts, ends_with_macro = macro_string(text)
    if ends_with_macro:
        return parts
    tail = parts[-1]
    assert isinstance(tail, str)
    tail = tail[:-1] if tail.endswith(".") else tail
    dot = tail.rfind(".")
    if dot < 0 or not _TOPLABEL.fullmatch(tail[dot + 1 :]):
        raise SpfSyntaxError(f"{text!r} does not end with a macro or a valid top label")
    return parts


def parse_record(text: str) -> Record:
    """Parse a whole ``v=spf1`` record; SpfSyntaxError names the first fault.

    >>> parse_record("v=spf1 a/24 -all").mechanisms[0].cidr4
    24
    """
    if not _VISIBLE_OR_SPACE.match(text):
        raise SpfSyntaxError("the record has a character outside visible ASCII and space")
    if not is_spf_record(text):
        raise SpfSyntaxError("the record does not start with v=spf1")
    mechanisms: list[Mechanism] = []
    redirect: MacroString | None = None
    exp: MacroString | None = None
    seen: set[str] = set()
    for term in text[6:].split(" "):
        if not term:
            continue
        modifier = _MODIFIER.match(term)
        if modifier is not None:
            name, value = modifier[1].lower(), modifier[2]
            if name in ("redirect", "exp"):
                if name in seen:
                    raise SpfSyntaxError(f"{name}= more than once")
                seen.add(name)
                if name == "redirect":
                    redirect = domain_spec(value)
                else:
                    exp = domain_spec(value)
            else:
                macro_string(value)  # unknown modifiers are ignored, but must parse
            continue
        mechanisms.append(_mechanism(term))
    return Record(tuple(mechanisms), redirect, exp)


def is_spf_record(text: str) -> bool:
    """Whether a TXT record is an SPF record: "v=spf1" (any case), then a space or the end."""
    return text[:6].lower() == "v=spf1" and (len(text) == 6 or text[6] == " ")


def _mechanism(term: str) -> Mechanism:
    match = _MECHANISM.match(term)
    if match is None:
        raise SpfSyntaxError(f"{term!r} is neither a mechanism nor a modifier")
    qualifier, kind, rest = match[1] or "+", match[2].lower(), match[3]
    if kind == "all":
        if rest:
            raise SpfSyntaxError(f"{term!r}: 'all' takes no argument")
        return Mechanism(qualifier, kind, term)
    if kind in ("include", "exists"):
        if not rest.startswith(":"):
            raise SpfSyntaxError(f"{term!r}: {kind} needs ':' and a domain")
        return Mechanism(qualifier, kind, term, domain_spec(rest[1:]))
    if kind == "ptr":
        if not rest:
            return Mechanism(qualifier, kind, term)
        if not rest.startswith(":"):
            raise SpfSyntaxError(f"{term!r}: ptr takes only ':' and a domain")
        return Mechanism(qualifier, kind, term, domain_spec(rest[1:]))
    if kind in ("a", "mx"):
        if rest and rest[0] not in ":/":
            raise SpfSyntaxError(f"{term!r} is not a mechanism")
        split = _DUAL_CIDR.match(rest[1:] if rest.startswith(":") else rest)
        assert split is not None  # every string matches, with no CIDR at worst
        spec, cidr4, cidr6 = split[1], split[2], split[3]
        if rest.startswith(":"):
            target: MacroString | None = domain_spec(spec)
        elif spec:
            raise SpfSyntaxError(f"{term!r}: bad CIDR length")
        else:
            target = None
        four = int(cidr4) if cidr4 else 32
        six = int(cidr6) if cidr6 else 128
        if four > 32 or six > 128:
            raise SpfSyntaxError(f"{term!r}: CIDR length out of range")
        return Mechanism(qualifier, kind, term, target, cidr4=four, cidr6=six)
    if kind in ("ip4", "ip6"):
        if not rest.startswith(":"):
            raise SpfSyntaxError(f"{term!r}: {kind} needs ':' and a network")
        address, slash, length = rest[1:].partition("/")
        try:
            if kind == "ip4":
                if not _IP4.match(address) or (slash and not _CIDR4.match(length)):
                    raise ValueError
                network: IPv4Network | IPv6Network = IPv4Network(
                    f"{address}/{length or 32}", strict=False
                )
            else:
                if "%" in address or (slash and not _CIDR6.match(length)):
                    raise ValueError
                network = IPv6Network(f"{address}/{length or 128}", strict=False)
        except ValueError:
            raise SpfSyntaxError(f"{term!r} is not a valid {kind} network") from None
        span = (network.version, int(network.network_address), int(network.broadcast_address))
        return Mechanism(qualifier, kind, term, network=network, span=span)
    raise SpfSyntaxError(f"unknown mechanism {term!r}")


@functools.lru_cache(maxsize=4096)
def _parsed(text: str) -> Record | str:
    """parse_record, remembered: a busy sender's record is parsed once, not per message."""
    try:
        return parse_record(text)
    except SpfSyntaxError as exc:
        return str(exc)


# --- Names and macros --------------------------------------------------------------------


@functools.lru_cache(maxsize=8192)
def _domain_name(text: str, *, initial: bool = False) -> str | None:
    """``text`` as a name to ask: without a final dot, cut from the left to 253 characters
    (§7.3); None when it is not a multi-label name of 1 to 63 visible ASCII characters a
    label (§4.3), nor, as the ``initial`` domain, a domain literal or an IP address."""
    if text.endswith("."):
        text = text[:-1]
    while len(text) > 253 and "." in text:
        text = text.split(".", 1)[1]
    if not text or len(text) > 253 or not _VISIBLE.match(text):
        return None
    labels = text.split(".")
    if len(labels) < 2 or any(not 0 < len(label) < 64 for label in labels):
        return None
    if initial and (text.startswith("[") or labels[-1].isdigit()):
        return None
    return text


def _nibbles(ip: IPAddress) -> str:
    if ip.version == 4:
        return str(ip)
    return ".".join(ip.exploded.replace(":", ""))


class _Run:
    """One check_host evaluation: the identities, the counters, the validated names."""

    __slots__ = (
        "helo",
        "ip",
        "ip_int",
        "local",
        "lookups",
        "ptr_names",
        "ptr_void",
        "sender",
        "sender_domain",
        "voids",
    )

    def __init__(self, ip: IPAddress, sender: str, helo: str) -> None:
        local, at, domain = sender.rpartition("@")
        if not at:
            local, domain = "", sender
        self.ip = ip
        self.ip_int = int(ip)
        self.local = local or "postmaster"
        self.sender_domain = domain
        self.sender = f"{self.local}@{domain}"
        self.helo = helo
        self.lookups = 0
        self.voids = 0
        self.ptr_names: list[str] | None = None  # validated names of ip, once asked
        self.ptr_void = False


# --- Evaluation --------------------------------------------------------------------------


class SpfChecker:
    """``check_host`` over a :class:`RecordResolver` (the shared :class:`DnsClient`).

    ``timeout_s`` bounds each DNS question (the client retries once at half of it);
    ``budget_s`` the whole check, after which it is a ``temperror`` (RFC 7208 §4.6.4 asks
    for at least 20 s; a scan's budget is far shorter, and the caller chooses).
    """

    def __init__(
        self,
        resolver: RecordResolver,
        *,
        timeout_s: float = 1.0,
        budget_s: float = 1.5,
        max_lookups: int = 10,
        max_void_lookups: int = 2,
        explain: bool = False,
        receiver: str = "unknown",
        prefetch: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.resolver = resolver
        # A cached answer read as it is (no future made for it), where the client can.
        now = getattr(resolver, "resolve_now", None)
        self._resolve: Callable[[str, RdType, float], Answer | asyncio.Future[Answer]] = (
            now if callable(now) else resolver.resolve
        )
        self.timeout_s = timeout_s
        self.budget_s = budget_s
        self.max_lookups = max_lookups
        self.max_void_lookups = max_void_lookups
        self.explain = explain
        self.receiver = receiver
        self.prefetch = prefetch
        self.clock = clock

    async def check_mail_from(self, ip: str | IPAddress, mail_from: str, helo: str) -> SpfResult:
        """The MAIL FROM identity (RFC 7208 §2.4): the reverse-path's domain, or for the
        null reverse-path ``<>``, postmaster at the HELO name."""
        address = mail_from.strip().removeprefix("<").removesuffix(">")
        if not address:
            return await self.check_host(ip, helo, f"postmaster@{helo}", helo)
        return await self.check_host(ip, address.rpartition("@")[2], address, helo)

    async def check_helo(self, ip: str | IPAddress, helo: str) -> SpfResult:
        """The HELO identity (RFC 7208 §2.3): postmaster at the HELO name."""
        return await self.check_host(ip, helo, f"postmaster@{helo}", helo)

    async def check_host(
        self, ip: str | IPAddress, domain: str, sender: str, helo: str = ""
    ) -> SpfResult:
        """RFC 7208 §4: the SPF result for ``ip`` sending as ``sender`` for ``domain``
        (ValueError for an ``ip`` that is not an address; every other problem is a result)."""
        run = _Run(_client_address(ip), sender, helo)
        name = _domain_name(domain, initial=True)
        if name is None:
            return SpfResult(Result.NONE, domain, detail="not a valid domain name")
        deadline = asyncio.get_running_loop().time() + self.budget_s
        try:
            async with asyncio.timeout_at(deadline):
                result, mechanism, detail, exp_at = await self._check(run, name)
        except _PermError as exc:
            return self._ended(Result.PERMERROR, name, run, str(exc))
        except _TempError as exc:
            return self._ended(Result.TEMPERROR, name, run, str(exc))
        except TimeoutError:
            detail = f"no result within {self.budget_s:g}s"
            return self._ended(Result.TEMPERROR, name, run, detail)
        explanation = ""
        if exp_at is not None and result is Result.FAIL and self.explain:
            try:  # under the same budget, but running out of it only loses the text
                async with asyncio.timeout_at(deadline):
                    explanation = await self._explanation(run, *exp_at)
            except TimeoutError:
                pass
        return SpfResult(result, name, mechanism, detail, explanation, run.lookups, run.voids)

    def check_mail_from_now(
        self, ip: str | IPAddress, mail_from: str, helo: str
    ) -> SpfResult | None:
        """:meth:`check_mail_from` from the resolver's cache alone; None when DNS must be
        asked (the question is on its way: the full check joins it)."""
        address = mail_from.strip().removeprefix("<").removesuffix(">")
        if not address:
            return self.check_host_now(ip, helo, f"postmaster@{helo}", helo)
        return self.check_host_now(ip, address.rpartition("@")[2], address, helo)

    def check_helo_now(self, ip: str | IPAddress, helo: str) -> SpfResult | None:
        """:meth:`check_helo` from the resolver's cache alone; None when DNS must be asked."""
        return self.check_host_now(ip, helo, f"postmaster@{helo}", helo)

    def check_host_now(
        self, ip: str | IPAddress, domain: str, sender: str, helo: str = ""
    ) -> SpfResult | None:
        """:meth:`check_host` without a task, a timer or a wait, when every answer it needs
        is in the resolver's cache (most checks of a busy hour); None at the first one
        that is not, or when an explanation is to be fetched: call :meth:`check_host`.

        The evaluation is the same coroutine, run by hand: with every answer cached it
        never suspends, so one step runs it to its end."""
        run = _Run(_client_address(ip), sender, helo)
        name = _domain_name(domain, initial=True)
        if name is None:
            return SpfResult(Result.NONE, domain, detail="not a valid domain name")
        evaluation = self._check(run, name)
        try:
            evaluation.send(None)
        except StopIteration as done:
            result, mechanism, detail, exp_at = done.value
        except _PermError as exc:
            return self._ended(Result.PERMERROR, name, run, str(exc))
        except _TempError as exc:
            return self._ended(Result.TEMPERROR, name, run, str(exc))
        else:  # it waits for an answer: left to check_host
            evaluation.close()
            return None
        if exp_at is not None and result is Result.FAIL and self.explain:
            return None
        return SpfResult(result, name, mechanism, detail, "", run.lookups, run.voids)

    @staticmethod
    def _ended(result: Result, domain: str, run: _Run, detail: str) -> SpfResult:
        return SpfResult(result, domain, "", detail, "", run.lookups, run.voids)

    async def _check(
        self, run: _Run, domain: str
    ) -> tuple[Result, str, str, tuple[MacroString, str] | None]:
        """check_host() for ``domain``: (result, mechanism, detail, (exp, its domain))."""
        pending = self._resolve(domain, RdType.TXT, self.timeout_s)
        # Not from the cache: its terms' answers likely not either.
        fetched = not isinstance(pending, Answer) and not pending.done()
        if isinstance(pending, Answer):
            answer = pending
        else:
            answer = await asyncio.shield(pending) if fetched else pending.result()
        if answer.status.failed:
            raise _TempError(f"TXT {domain}: {answer.detail or answer.status.value}")
        records = [text for text in answer.records if is_spf_record(text)]
        if not records:
            why = "no such domain" if answer.nxdomain else "no SPF record"
            return Result.NONE, "", f"{domain}: {why}", None
        if len(records) > 1:
            raise _PermError(f"{domain} publishes {len(records)} SPF records")
        record = _parsed(records[0])
        if isinstance(record, str):
            raise _PermError(f"{domain}: {record}")
        if self.prefetch and fetched:
            self._prefetch(run, record, domain)
        version, ip_int = run.ip.version, run.ip_int
        for mechanism in record.mechanisms:
            kind = mechanism.kind
            if kind == "ip4" or kind == "ip6":  # inline: most terms of big records are these
                span = mechanism.span  # an address of the other family is in neither
                matched = span[0] == version and span[1] <= ip_int <= span[2]
            else:
                matched = await self._matches(run, mechanism, domain)
            if matched:
                exp = (record.exp, domain) if record.exp is not None else None
                return _QUALIFIERS[mechanism.qualifier], mechanism.text, "", exp
        if record.redirect is not None:
            self._count(run, "redirect")
            target = _domain_name(await self._expand(run, record.redirect, domain))
            if target is None:
                raise _PermError(f"{domain}: redirect to a malformed domain")
            outcome = await self._check(run, target)
            if outcome[0] is Result.NONE:
                raise _PermError(f"{domain}: redirect={target}: {outcome[2]}")
            return outcome
        exp = (record.exp, domain) if record.exp is not None else None
        return Result.NEUTRAL, "default", "", exp

    async def _matches(self, run: _Run, mechanism: Mechanism, domain: str) -> bool:
        kind = mechanism.kind
        ip = run.ip
        if kind == "all":
            return True
        if kind == "ip4" or kind == "ip6":
            version, first, last = mechanism.span
            return version == ip.version and first <= run.ip_int <= last
        self._count(run, mechanism.text)
        target: str | None = domain
        if mechanism.target is not None:
            target = _domain_name(await self._expand(run, mechanism.target, domain))
        if kind == "include":
            if target is None:
                raise _PermError(f"{mechanism.text}: a malformed domain")
            result, _, detail, _ = await self._check(run, target)
            if result is Result.NONE:
                raise _PermError(f"{mechanism.text}: {detail}")
            return result is Result.PASS
        if target is None:  # a name that cannot exist, from macros: nothing to match
            return False
        if kind == "ptr":
            names = await self._validated_names(run)
            if run.ptr_void:
                self._void(run, mechanism.text)
            suffix = "." + target.lower()
            return any(name == target.lower() or name.endswith(suffix) for name in names)
        if kind == "exists":
            answer = await self._ask(target, RdType.A)
            self._raise_failed(answer, target, RdType.A)
            if not answer.listed:
                self._void(run, mechanism.text)
            return answer.listed
        if kind == "a":
            rdtype = RdType.A if ip.version == 4 else RdType.AAAA
            answer = await self._ask(target, rdtype)
            self._raise_failed(answer, target, rdtype)
            if not answer.listed:
                self._void(run, mechanism.text)
                return False
            return _contains(answer.records, ip, mechanism.cidr4, mechanism.cidr6)
        # mx
        answer = await self._ask(target, RdType.MX)
        self._raise_failed(answer, target, RdType.MX)
        if not answer.listed:
            self._void(run, mechanism.text)
            return False
        if len(answer.records) > 10:
            raise _PermError(f"{mechanism.text}: {target} has more than 10 MX records")
        rdtype = RdType.A if ip.version == 4 else RdType.AAAA
        hosts = [host for host in answer.records if _domain_name(host) is not None]
        failed = ""
        for host, reply in zip(hosts, await self._ask_all(hosts, rdtype), strict=True):
            if reply.status.failed:
                failed = failed or f"{rdtype.name} {host}: {reply.detail or reply.status.value}"
            elif _contains(reply.records, ip, mechanism.cidr4, mechanism.cidr6):
                return True
        if failed:
            raise _TempError(failed)
        return False

    def _count(self, run: _Run, term: str) -> None:
        run.lookups += 1
        if run.lookups > self.max_lookups:
            raise _PermError(f"more than {self.max_lookups} DNS lookups (at {term})")

    def _void(self, run: _Run, term: str) -> None:
        run.voids += 1
        if run.voids > self.max_void_lookups:
            raise _PermError(f"more than {self.max_void_lookups} void lookups (at {term})")

    @staticmethod
    def _raise_failed(answer: Answer, name: str, rdtype: RdType) -> None:
        if answer.status.failed:
            raise _TempError(f"{rdtype.name} {name}: {answer.detail or answer.status.value}")

    async def _ask(self, name: str, rdtype: RdType) -> Answer:
        future = self._resolve(name, rdtype, self.timeout_s)
        if isinstance(future, Answer):
            return future
        if future.done():
            return future.result()
        # Shielded: giving up (the budget) must not cancel a query other lookups share.
        return await asyncio.shield(future)

    async def _ask_all(self, names: Iterable[str], rdtype: RdType) -> list[Answer]:
        futures = [self.resolver.resolve(name, rdtype, self.timeout_s) for name in names]
        pending = [future for future in futures if not future.done()]
        if pending:
            await asyncio.wait(pending)  # cancelled from outside, it leaves them running
        return [future.result() for future in futures]

    async def _validated_names(self, run: _Run) -> list[str]:
        """The names of run.ip whose own addresses include it (§5.5), lower case; the first
        10 PTR names at most; a DNS failure on the way just leaves names out."""
        if run.ptr_names is not None:
            return run.ptr_names
        answer = await self._ask(run.ip.reverse_pointer, RdType.PTR)
        run.ptr_void = not answer.listed and not answer.status.failed
        names = [name.lower() for name in answer.records[:10] if _domain_name(name) is not None]
        rdtype = RdType.A if run.ip.version == 4 else RdType.AAAA
        run.ptr_names = [
            name
            for name, reply in zip(names, await self._ask_all(names, rdtype), strict=True)
            if _contains(reply.records, run.ip, 32, 128)
        ]
        return run.ptr_names

    async def _expand(self, run: _Run, parts: MacroString, domain: str) -> str:
        """Expand a macro-string (§7.3) for ``domain``, asking DNS for %{p} if it has it."""
        validated = ""
        if any(isinstance(part, Macro) and part.letter == "p" for part in parts):
            if run.ptr_names is None:
                self._count(run, "%{p}")  # §4.6.4: the PTR query counts as a lookup
            validated = _pick_validated(await self._validated_names(run), domain)
        return _expand_parts(run, parts, domain, validated, self.receiver, self.clock)

    def _prefetch(self, run: _Run, record: Record, domain: str) -> None:
        """Send the first question of the record's next counted terms now, so that the
        record's includes and hosts travel together: at most as many as the lookup limit
        still allows, and none that needs %{p}.  Their answers wait in the cache (or in
        flight) until the term is evaluated, and only then count."""
        left = self.max_lookups - run.lookups
        family = RdType.A if run.ip.version == 4 else RdType.AAAA
        wanted: list[tuple[MacroString | None, RdType]] = []
        for mechanism in record.mechanisms:
            if mechanism.kind in _COUNTED:
                wanted.append((mechanism.target, _FIRST_QUESTION.get(mechanism.kind, family)))
        if record.redirect is not None:
            wanted.append((record.redirect, RdType.TXT))
        for spec, rdtype in wanted[: max(left, 0)]:
            if rdtype == RdType.PTR:
                continue  # ptr asks about the client, once per check; nothing to gain
            if spec is None:
                name: str | None = domain
            elif any(isinstance(part, Macro) and part.letter == "p" for part in spec):
                continue
            else:
                name = _domain_name(_expand_parts(run, spec, domain, "", self.receiver, self.clock))
            if name is not None:
                self.resolver.resolve(name, rdtype, self.timeout_s)

    async def _explanation(self, run: _Run, exp: MacroString, domain: str) -> str:
        """The exp= text (§6.2); any trouble on the way gives none, never an error."""
        try:
            name = _domain_name(await self._expand(run, exp, domain))
        except _PermError:
            return ""
        if name is None:
            return ""
        answer = await self._ask(name, RdType.TXT)
        if len(answer.records) != 1:
            return ""
        try:
            parts, _ = macro_string(answer.records[0], explanation=True)
            return await self._expand(run, parts, domain)
        except (SpfSyntaxError, _PermError):
            return ""


def expand(
    text: str,
    *,
    ip: str | IPAddress,
    sender: str,
    domain: str,
    helo: str = "",
    validated: str = "unknown",
    receiver: str = "unknown",
    now: float = 0.0,
    explanation: bool = False,
) -> str:
    """Expand a macro-string as check_host() does (RFC 7208 §7), with %{p} given as
    ``validated``; SpfSyntaxError for one the grammar does not allow.

    >>> expand("%{ir}.%{v}._spf.%{d2}", ip="192.0.2.3", sender="strong-bad@email.example.com",
    ...        domain="email.example.com")
    '3.2.0.192.in-addr._spf.example.com'
    """
    parts, _ = macro_string(text, explanation=explanation)
    run = _Run(_client_address(ip), sender, helo)
    return _expand_parts(run, parts, domain, validated, receiver, lambda: now)


def _client_address(ip: str | IPAddress) -> IPAddress:
    address = _client(ip) if isinstance(ip, str) else ip
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # §5: an IPv4-mapped client is an IPv4 client
    return address


@functools.lru_cache(maxsize=4096)
def _client(text: str) -> IPAddress:
    """``text`` parsed (ValueError when no address); remembered, since a message's
    MAIL FROM and HELO checks, and the next messages of a busy client, ask again."""
    return ipaddress.ip_address(text)


def _expand_parts(
    run: _Run,
    parts: MacroString,
    domain: str,
    validated: str,
    receiver: str,
    clock: Callable[[], float],
) -> str:
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        value = _macro_value(run, part.letter, domain, validated, receiver, clock)
        if part.digits or part.reverse or part.delimiters:
            if part.delimiters:
                pieces = re.split(f"[{re.escape(part.delimiters)}]", value)
            else:
                pieces = value.split(".")
            if part.reverse:
                pieces.reverse()
            if part.digits:
                pieces = pieces[-part.digits :]
            value = ".".join(pieces)
        if part.escape:
            value = urllib.parse.quote(value, safe="-._~")
        out.append(value)
    return "".join(out)


def _macro_value(
    run: _Run,
    letter: str,
    domain: str,
    validated: str,
    receiver: str,
    clock: Callable[[], float],
) -> str:
    if letter == "s":
        return run.sender
    if letter == "l":
        return run.local
    if letter == "o":
        return run.sender_domain
    if letter == "d":
        return domain
    if letter == "i":
        return _nibbles(run.ip)
    if letter == "p":
        return validated
    if letter == "v":
        return "in-addr" if run.ip.version == 4 else "ip6"
    if letter == "h":
        return run.helo
    if letter == "c":
        return str(run.ip)
    if letter == "r":
        return receiver
    return str(int(clock()))  # t


def _pick_validated(names: list[str], domain: str) -> str:
    """%{p} (§7.3): the validated name equal to ``domain``, else one under it, else any."""
    domain = domain.lower()
    for name in names:
        if name == domain:
            return name
    for name in names:
        if name.endswith("." + domain):
            return name
    return names[0] if names else "unknown"


def _contains(addresses: Iterable[str], ip: IPAddress, cidr4: int, cidr6: int) -> bool:
    """Whether ``ip`` is in one of ``addresses`` widened to the CIDR length of its family."""
    version = ip.version
    shift = 32 - cidr4 if version == 4 else 128 - cidr6
    mine = int(ip) >> shift
    for text in addresses:
        address = _address(text)
        if address is not None and address[0] == version and address[1] >> shift == mine:
            return True
    return False


@functools.lru_cache(maxsize=8192)
def _address(text: str) -> tuple[int, int] | None:
    """An A or AAAA record's address as (version, integer); None if it is not one."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return address.version, int(address)


async def check_host(
    ip: str | IPAddress,
    domain: str,
    sender: str,
    helo: str = "",
    *,
    resolver: RecordResolver,
    timeout_s: float = 1.0,
    budget_s: float = 1.5,
    explain: bool = False,
) -> SpfResult:
    """RFC 7208's check_host() through a :class:`SpfChecker` made for this one call."""
    checker = SpfChecker(resolver, timeout_s=timeout_s, budget_s=budget_s, explain=explain)
    return await checker.check_host(ip, domain, sender, helo)
