"""Webhook URLs must not reach the gateway's own network, in any spelling."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence

import pytest

from chaingate.adapters.ssrf import (
    AddressKind,
    UrlGuard,
    WebhookUrlForbidden,
    classify,
    is_public_address,
    system_resolver,
)
from chaingate.domain.errors import DomainError


class FakeDns:
    """Answers from a table; records the questions; unknown names do not resolve."""

    def __init__(self, table: dict[str, Sequence[str]] | None = None) -> None:
        self.table = table or {}
        self.asked: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append((host, port))
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.table[host]


async def refused(guard: UrlGuard, url: str) -> WebhookUrlForbidden:
    with pytest.raises(WebhookUrlForbidden) as info:
        await guard.check(url)
    error = info.value
    assert isinstance(error, DomainError)
    assert (error.code, error.status, error.field) == ("webhook_url_forbidden", 422, "url")
    assert error.detail
    return error


BAD_SCHEMES = [
    "ftp://example.com/hook",
    "file:///etc/passwd",
    "gopher://example.com/",
    "javascript:alert(1)",
    "ws://example.com/",
    "example.com/hook",
    "//example.com/hook",
    "",
    "http://",
    "http://:80/",
]

FORBIDDEN_LITERALS = [
    # loopback
    "http://127.0.0.1/",
    "http://127.0.0.1:8080/hook",
    "http://127.255.255.254/",
    "http://[::1]/",
    # private, RFC 1918 and carrier-grade NAT
    "http://10.0.0.1/",
    "http://10.255.255.255/",
    "http://172.16.0.1/",
    "http://172.31.255.255/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://100.127.255.254/",
    # link-local, the cloud metadata service among them
    "http://169.254.169.254/latest/meta-data/",
    "https://169.254.0.1/",
    "http://[fe80::1]/",
    "http://[fe80::1%25eth0]/",
    # unspecified
    "http://0.0.0.0/",
    "http://0.0.0.0:8080/",
    "http://[::]/",
    # multicast, broadcast, reserved, documentation
    "http://224.0.0.1/",
    "http://239.255.255.250/",
    "http://[ff02::1]/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://192.0.2.10/",
    "http://198.18.0.1/",
    "http://[2001:db8::1]/",
    # unique-local IPv6
    "http://[fc00::1]/",
    "http://[fd12:3456:789a::1]/",
    # IPv6 spellings of forbidden IPv4 addresses
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:0.0.0.0]/",
    "http://[::127.0.0.1]/",  # IPv4-compatible (deprecated)
    "http://[::ffff:0:127.0.0.1]/",  # IPv4-translated
    "http://[2002:7f00:1::]/",  # 6to4 around 127.0.0.1
    "http://[2002:a9fe:a9fe::1]/",  # 6to4 around 169.254.169.254
    "http://[64:ff9b::a00:1]/",  # NAT64 around 10.0.0.1
]

NUMERIC_SPELLINGS = [
    "http://2130706433/",  # 127.0.0.1 as one integer
    "http://0x7f000001/",
    "http://0x7f.1/",
    "http://0x7F.0.0.1/",
    "http://017700000001/",  # octal
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://127.0.1/",
    "http://3232235521/",  # 192.168.0.1
    "http://0/",
    "http://0x0/",
    "http://2852039166/",  # 169.254.169.254
    "http://1.2.3.4.5/",
    "http://127.0.0.1./",  # trailing dot: a name to httpx, an address to getaddrinfo
]


async def test_allowed_networks_admit_their_internal_addresses_only() -> None:
    dns = FakeDns({"erp.corp.example": ["10.20.0.7"], "other.corp.example": ["10.20.1.7"]})
    nets = [ipaddress.ip_network("10.20.0.0/24"), ipaddress.ip_network("127.10.0.1/32")]
    guard = UrlGuard(resolver=dns, allowed_networks=nets)
    for url in ("http://erp.corp.example/", "https://10.20.0.255:8443/", "http://127.10.0.1/"):
        await guard.check(url)
    await guard.check("https://93.184.216.34/")  # public addresses stay allowed
    for url in (
        "http://other.corp.example/",  # 10.20.1.7: private, outside the listed network
        "http://10.20.1.1/",
        "http://127.0.0.1/",
        "http://127.10.0.2/",
        "http://localhost/",  # loopback by name: not an address in the list
        "http://[::ffff:10.20.0.7]/",  # the IPv6 spelling is not in an IPv4 network
        "http://169.254.169.254/",
    ):
        await refused(guard, url)


async def test_allowed_networks_never_open_reserved_addresses() -> None:
    guard = UrlGuard(allowed_networks=[ipaddress.ip_network("0.0.0.0/0")])
    await guard.check("http://10.0.0.1/")
    for url in ("http://0.0.0.0/", "http://224.0.0.1/", "http://255.255.255.255/"):
        await refused(guard, url)


@pytest.mark.parametrize("url", BAD_SCHEMES)
async def test_only_http_and_https_urls_are_accepted(url: str) -> None:
    await refused(UrlGuard(resolver=FakeDns()), url)


@pytest.mark.parametrize("url", FORBIDDEN_LITERALS)
async def test_non_public_address_literals_are_refused(url: str) -> None:
    dns = FakeDns()
    await refused(UrlGuard(resolver=dns), url)
    assert dns.asked == []  # decided from the literal, no lookup


@pytest.mark.parametrize("url", NUMERIC_SPELLINGS)
async def test_numeric_host_spellings_are_refused(url: str) -> None:
    # A permissive DNS stands in for getaddrinfo(), which would read them as IPv4 addresses.
    dns = FakeDns({url.split("/")[2]: ["8.8.8.8"]})
    await refused(UrlGuard(resolver=dns), url)
    assert dns.asked == []


@pytest.mark.parametrize("name", ["localhost", "LOCALHOST", "localhost.", "api.localhost"])
async def test_localhost_names_are_loopback_whatever_dns_says(name: str) -> None:
    dns = FakeDns({name.lower(): ["93.184.216.34"]})
    error = await refused(UrlGuard(resolver=dns), f"http://{name}:8000/hook")
    assert "loopback" in error.detail


@pytest.mark.parametrize(
    "answers",
    [
        ["127.0.0.1"],
        ["10.1.2.3"],
        ["169.254.169.254"],
        ["::ffff:127.0.0.1"],
        ["fd00::5"],
        ["0.0.0.0"],
        ["93.184.216.34", "10.0.0.7"],  # one bad answer among good ones is enough
        ["2606:2800:220:1:248:1893:25c8:1946", "::1"],
    ],
)
async def test_names_resolving_to_any_non_public_address_are_refused(answers: list[str]) -> None:
    dns = FakeDns({"hooks.example.com": answers})
    error = await refused(UrlGuard(resolver=dns), "https://hooks.example.com/cg")
    assert dns.asked == [("hooks.example.com", 443)]
    for answer in answers:
        if not is_public_address(answer):
            assert answer not in error.detail  # internal DNS answers are not echoed back


async def test_names_that_do_not_resolve_are_refused() -> None:
    error = await refused(UrlGuard(resolver=FakeDns()), "https://nowhere.example/")
    assert "could not be resolved" in error.detail


async def test_an_empty_or_unreadable_answer_is_refused() -> None:
    await refused(UrlGuard(resolver=FakeDns({"a.example": []})), "http://a.example/")
    await refused(UrlGuard(resolver=FakeDns({"b.example": ["not-an-ip"]})), "http://b.example/")


async def test_a_hanging_resolver_is_refused_after_its_timeout() -> None:
    async def hang(host: str, port: int) -> list[str]:
        await asyncio.sleep(10)
        return ["93.184.216.34"]

    guard = UrlGuard(resolver=hang, resolve_timeout=0.05)
    error = await refused(guard, "https://slow.example/")
    assert "in time" in error.detail


async def test_invalid_host_names_are_refused() -> None:
    await refused(UrlGuard(resolver=FakeDns()), "http://exa mple.com/")
    await refused(UrlGuard(resolver=FakeDns()), "http://a" + "b" * 2100 + ".com/")


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.216.34/",
        "https://8.8.8.8:8443/webhooks?x=1",
        "https://[2606:4700:4700::1111]/hook",
        "http://[::ffff:8.8.8.8]/",  # mapped forms of public addresses are public
        "https://user:pass@1.1.1.1/basic-auth",
    ],
)
async def test_public_address_literals_are_accepted(url: str) -> None:
    dns = FakeDns()
    await UrlGuard(resolver=dns).check(url)
    assert dns.asked == []


async def test_a_public_name_is_accepted_and_resolved_on_the_right_port() -> None:
    dns = FakeDns({"hooks.shop.example": ["93.184.216.34", "2606:2800:220:1::1"]})
    guard = UrlGuard(resolver=dns)
    await guard.check("https://hooks.shop.example/chaingate")
    await guard.check("http://HOOKS.shop.example:8080/chaingate")
    assert dns.asked == [("hooks.shop.example", 443), ("hooks.shop.example", 8080)]
    checked = await guard.resolve("https://hooks.shop.example/x")
    assert checked.host == "hooks.shop.example"
    assert not checked.host_is_address
    assert [str(a) for a in checked.addresses] == ["93.184.216.34", "2606:2800:220:1::1"]


async def test_dns_is_asked_again_on_every_check() -> None:
    dns = FakeDns({"rebind.example": ["93.184.216.34"]})
    guard = UrlGuard(resolver=dns)
    await guard.check("https://rebind.example/")
    dns.table["rebind.example"] = ["127.0.0.1"]  # the answer changes after registration
    await refused(guard, "https://rebind.example/")


async def test_dev_mode_allows_loopback_only() -> None:
    dns = FakeDns({"localhost": ["127.0.0.1", "::1"], "intranet.example": ["10.0.0.2"]})
    guard = UrlGuard(allow_loopback=True, resolver=dns)
    for url in ("http://127.0.0.1:8000/", "http://[::1]:8000/", "http://localhost:8000/"):
        await guard.check(url)
    await guard.check("http://[::ffff:127.0.0.1]/")
    for url in (
        "http://10.0.0.1/",
        "http://intranet.example/",
        "http://169.254.169.254/",
        "http://[fe80::1]/",
        "http://0.0.0.0:8000/",
        "http://[::]:8000/",
        "http://2130706433/",
    ):
        await refused(guard, url)


async def test_allow_private_admits_internal_networks_but_not_nonsense() -> None:
    dns = FakeDns({"intranet.example": ["10.0.0.2"], "localhost": ["127.0.0.1"]})
    guard = UrlGuard(allow_private=True, resolver=dns)
    for url in (
        "http://10.0.0.1/",
        "http://192.168.1.20:8080/",
        "http://100.64.1.1/",
        "http://[fd00::1]/",
        "http://127.0.0.1/",
        "http://localhost/",
        "http://169.254.169.254/",  # the operator asked for it explicitly
        "http://intranet.example/",
    ):
        await guard.check(url)
    for url in (
        "http://0.0.0.0/",
        "http://[::]/",
        "http://224.0.0.1/",
        "http://255.255.255.255/",
        "http://240.0.0.1/",
        "http://0x7f.1/",
        "ftp://10.0.0.1/",
    ):
        await refused(guard, url)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("8.8.8.8", AddressKind.PUBLIC),
        ("1.1.1.1", AddressKind.PUBLIC),
        ("2001:4860:4860::8888", AddressKind.PUBLIC),
        ("::ffff:8.8.8.8", AddressKind.PUBLIC),
        ("2002:808:808::1", AddressKind.PUBLIC),
        ("127.0.0.1", AddressKind.LOOPBACK),
        ("::1", AddressKind.LOOPBACK),
        ("::ffff:127.0.0.1", AddressKind.LOOPBACK),
        ("10.0.0.1", AddressKind.PRIVATE),
        ("100.64.0.1", AddressKind.PRIVATE),
        ("fc00::1", AddressKind.PRIVATE),
        ("169.254.169.254", AddressKind.LINK_LOCAL),
        ("fe80::abcd", AddressKind.LINK_LOCAL),
        ("0.0.0.0", AddressKind.FORBIDDEN),
        ("::", AddressKind.FORBIDDEN),
        ("224.0.0.251", AddressKind.FORBIDDEN),
        ("ff02::fb", AddressKind.FORBIDDEN),
        ("240.1.2.3", AddressKind.FORBIDDEN),
        ("2001:db8::1", AddressKind.FORBIDDEN),
        ("2001::1", AddressKind.FORBIDDEN),  # Teredo
        ("100::1", AddressKind.FORBIDDEN),
        ("4000::1", AddressKind.FORBIDDEN),  # outside 2000::/3, unassigned
    ],
)
def test_classify(address: str, kind: AddressKind) -> None:
    assert classify(ipaddress.ip_address(address)) is kind
    assert is_public_address(address) is (kind is AddressKind.PUBLIC)
    assert is_public_address(ipaddress.ip_address(address)) is (kind is AddressKind.PUBLIC)


async def test_the_system_resolver_uses_getaddrinfo() -> None:
    answers = await system_resolver("localhost", 80)
    assert {"127.0.0.1", "::1"} & set(answers)
    # Through the guard with the real resolver: dev mode accepts, the default refuses.
    await UrlGuard(allow_loopback=True).check("http://localhost:9/")
    await refused(UrlGuard(), "http://localhost:9/")
