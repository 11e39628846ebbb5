"""Keeping webhook URLs away from the gateway's own network (server-side request forgery).

A merchant chooses the URL and the gateway makes the request, so without this check anyone with
an API key could make the gateway call its database, its admin ports or the cloud metadata service.
URLs are checked when registered and again before every attempt, because DNS answers change.
Every address a host resolves to must be allowed; the sender then connects to one of exactly
those addresses, so a second, different DNS answer (rebinding) is never used.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import httpx

from chaingate.domain.errors import WebhookUrlForbidden

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""Given a host name and port, the IP addresses (as text) a connection could reach."""

MAX_URL_LENGTH = 2048


class AddressKind(StrEnum):
    PUBLIC = "public"
    LOOPBACK = "loopback"
    PRIVATE = "private"
    LINK_LOCAL = "link-local"
    # Unspecified, multicast, broadcast, documentation, benchmarking, reserved: never a webhook.
    FORBIDDEN = "reserved"


# Kinds an operator may open network by network; FORBIDDEN never is.
_LISTABLE = frozenset({AddressKind.LOOPBACK, AddressKind.PRIVATE, AddressKind.LINK_LOCAL})


def _nets(*cidrs: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


_V4_KINDS = (
    (AddressKind.LOOPBACK, _nets("127.0.0.0/8")),
    (AddressKind.PRIVATE, _nets("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")),
    (AddressKind.LINK_LOCAL, _nets("169.254.0.0/16")),
    (
        AddressKind.FORBIDDEN,
        _nets(
            "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches the local host on Linux
            "192.0.0.0/24",
            "192.0.2.0/24",
            "192.88.99.0/24",
            "198.18.0.0/15",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "224.0.0.0/4",
            "240.0.0.0/4",  # includes 255.255.255.255
        ),
    ),
)
_V6_KINDS = (
    (AddressKind.LOOPBACK, _nets("::1/128")),
    (AddressKind.PRIVATE, _nets("fc00::/7", "64:ff9b:1::/48")),
    (AddressKind.LINK_LOCAL, _nets("fe80::/10")),
    (
        AddressKind.FORBIDDEN,
        _nets(
            "::/128",
            "100::/64",
            "2001::/23",  # IETF protocol assignments, Teredo among them
            "2001:db8::/32",
            "3fff::/20",
            "5f00::/16",
            "fec0::/10",
            "ff00::/8",
        ),
    ),
)
_GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")
# Ranges whose last 32 bits are an IPv4 address that a host or translator may connect to.
_EMBEDS_V4 = _nets("::/96", "::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b::/96")
# inet_aton() reads these as IPv4 (2130706433, 0x7f.1, 017700000001, 127.1); parsers disagree.
_NUMERIC_HOST = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+))*\.?$")
_HOST_NAME = re.compile(r"^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?$")


def classify(ip: IPAddress) -> AddressKind:
    """What kind of network `ip` belongs to; IPv6 forms that embed an IPv4 address take its kind."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_v4(ip)
        if embedded is not None:
            return classify(embedded)
        kinds = _V6_KINDS
    else:
        kinds = _V4_KINDS
    for kind, networks in kinds:
        if any(ip in net for net in networks):
            return kind
    if isinstance(ip, ipaddress.IPv6Address) and ip not in _GLOBAL_UNICAST_V6:
        return AddressKind.FORBIDDEN  # IANA has not assigned it for unicast
    # Python's own registry view, as a second opinion for ranges added after this list.
    return AddressKind.PUBLIC if ip.is_global else AddressKind.FORBIDDEN


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in (ipaddress.IPv6Address("::"), ipaddress.IPv6Address("::1")):
        return None
    if any(ip in net for net in _EMBEDS_V4):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public_address(ip: IPAddress | str) -> bool:
    """True when `ip` is a globally routable unicast address, in any spelling Python accepts."""
    address = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    return classify(address) is AddressKind.PUBLIC


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the operating system would connect to, via the event loop's getaddrinfo."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True, slots=True)
class CheckedUrl:
    """A URL that passed the guard, with the addresses it may be reached at (in resolver order)."""

    url: httpx.URL
    host: str
    port: int
    addresses: tuple[IPAddress, ...]
    host_is_address: bool  # an IP literal: no name to send as TLS SNI


class UrlGuard:
    """Refuses webhook URLs that could reach the gateway's own or private networks.

    `allow_private` (operator setting) also admits private, link-local and loopback addresses;
    `allow_loopback` (dev mode) admits loopback only; `allowed_networks` (operator setting)
    admits loopback, private or link-local addresses inside those networks only, for a
    receiver on an internal network without opening all of them. Unspecified, multicast and
    reserved addresses are refused whatever the settings.
    """

    def __init__(
        self,
        allow_private: bool = False,
        allow_loopback: bool = False,
        resolver: Resolver | None = None,
        *,
        allowed_networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network] = (),
        resolve_timeout: float = 5.0,
    ) -> None:
        self._allow_private = allow_private
        self._allow_loopback = allow_loopback or allow_private
        self._allowed_networks = tuple(allowed_networks)
        self._resolve = resolver or system_resolver
        self._resolve_timeout = resolve_timeout

    async def check(self, url: str) -> None:
        """Return if `url` may receive webhooks; raise WebhookUrlForbidden (422) if not."""
        await self.resolve(url)

    async def resolve(self, url: str) -> CheckedUrl:
        """The checked URL and its allowed addresses. Raises WebhookUrlForbidden."""
        parsed = _parse(url)
        host = parsed.host
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        literal = _literal(host)
        if literal is not None:
            self._require_allowed(literal, f"address {host}")
            return CheckedUrl(parsed, host, port, (literal,), host_is_address=True)
        if _NUMERIC_HOST.match(host):
            raise WebhookUrlForbidden(
                f"host {host!r} is a numeric address in a non-standard form; "
                "write IPv4 addresses as four decimal numbers (a.b.c.d)"
            )
        if not _HOST_NAME.match(host):
            raise WebhookUrlForbidden(f"host {host!r} is not a valid host name")
        if host.rstrip(".") == "localhost" or host.rstrip(".").endswith(".localhost"):
            # RFC 6761: always loopback, whatever a resolver says.
            self._require_kind(AddressKind.LOOPBACK, f"host {host}")
        addresses = await self._lookup(host, port)
        for address in addresses:
            # The address is not echoed: it may describe the gateway's internal DNS.
            self._require_allowed(address, f"host {host} resolves to an address that")
        return CheckedUrl(parsed, host, port, addresses, host_is_address=False)

    async def _lookup(self, host: str, port: int) -> tuple[IPAddress, ...]:
        try:
            async with asyncio.timeout(self._resolve_timeout):
                answers = await self._resolve(host, port)
        except TimeoutError as exc:
            raise WebhookUrlForbidden(f"host {host} could not be resolved in time") from exc
        except (OSError, UnicodeError) as exc:  # socket.gaierror is an OSError
            raise WebhookUrlForbidden(f"host {host} could not be resolved") from exc
        addresses: list[IPAddress] = []
        for answer in answers:
            try:
                addresses.append(ipaddress.ip_address(answer))
            except ValueError as exc:
                raise WebhookUrlForbidden(f"host {host} resolved to an unreadable answer") from exc
        if not addresses:
            raise WebhookUrlForbidden(f"host {host} could not be resolved")
        return tuple(dict.fromkeys(addresses))  # de-duplicated, resolver order kept

    def _require_allowed(self, address: IPAddress, subject: str) -> None:
        kind = classify(address)
        if kind in _LISTABLE and any(address in net for net in self._allowed_networks):
            return  # the operator named this internal network explicitly
        self._require_kind(kind, subject)

    def _require_kind(self, kind: AddressKind, subject: str) -> None:
        allowed = {
            AddressKind.PUBLIC: True,
            AddressKind.LOOPBACK: self._allow_loopback,
            AddressKind.PRIVATE: self._allow_private,
            AddressKind.LINK_LOCAL: self._allow_private,
            AddressKind.FORBIDDEN: False,
        }[kind]
        if not allowed:
            raise WebhookUrlForbidden(
                f"webhook URL {subject} is {kind.value}; only public addresses may receive webhooks"
            )


def _parse(url: str) -> httpx.URL:
    # httpx's own parser: the guard must read the host exactly as the sender will.
    if len(url) > MAX_URL_LENGTH:
        raise WebhookUrlForbidden(f"webhook URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise WebhookUrlForbidden(f"webhook URL is not a valid URL: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise WebhookUrlForbidden("webhook URL must start with http:// or https://")
    if not parsed.host:
        raise WebhookUrlForbidden("webhook URL has no host")
    if parsed.port == 0:
        raise WebhookUrlForbidden("webhook URL port 0 is not a valid port")
    return parsed


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
