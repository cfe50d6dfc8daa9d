"""netguard: which addresses are public, every spelling of an IP literal, URL rules, resolve-and-check."""

from __future__ import annotations

import socket
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest

from reelgate.netguard import (
    BlockedAddress,
    Resolver,
    is_public_ip,
    parse_ip_literal,
    resolve_checked,
    url_problem,
)

NON_PUBLIC = [
    "0.0.0.0",
    "0.1.2.3",
    "10.0.0.1",
    "10.255.255.255",
    "100.64.0.1",
    "100.127.255.254",
    "127.0.0.1",
    "127.255.0.9",
    "169.254.169.254",
    "172.16.0.1",
    "172.31.255.255",
    "192.0.0.8",
    "192.0.2.10",
    "192.168.1.1",
    "198.18.0.1",
    "198.19.255.255",
    "198.51.100.7",
    "203.0.113.9",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "febf::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",
    "::10.0.0.1",
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:c0a8:101::",  # 6to4 of 192.168.1.1
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2001:db8::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
]
PUBLIC = [
    "1.1.1.1",
    "8.8.8.8",
    "93.184.216.34",
    "100.63.255.255",
    "100.128.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "192.167.255.255",
    "198.17.255.255",
    "223.255.255.255",
    "2606:4700:4700::1111",
    "2a00:1450:4001::200e",
    "::ffff:8.8.8.8",
    "2002:808:808::1",  # 6to4 of 8.8.8.8
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
]


@pytest.mark.parametrize("text", NON_PUBLIC)
def test_non_public_addresses(text: str) -> None:
    assert not is_public_ip(ip_address(text))


@pytest.mark.parametrize("text", PUBLIC)
def test_public_addresses(text: str) -> None:
    assert is_public_ip(ip_address(text))


SPELLINGS = [
    ("127.0.0.1", "127.0.0.1"),
    ("2130706433", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"),
    ("0177.0000.0000.0001", "127.0.0.1"),
    ("0x7f.0x0.0x0.0x1", "127.0.0.1"),
    ("0X7F.0.0.1", "127.0.0.1"),
    ("0x7f000001", "127.0.0.1"),
    ("017700000001", "127.0.0.1"),
    ("127.1", "127.0.0.1"),
    ("127.0.1", "127.0.0.1"),
    ("10.1.2", "10.1.0.2"),
    ("0x0a.0x10203", "10.1.2.3"),
    ("127.0.0.1.", "127.0.0.1"),
    ("0", "0.0.0.0"),
    ("0x", "0.0.0.0"),
    ("\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11", "127.0.0.1"),  # full-width digits and dots
    ("127\u30020\u30020\u30021", "127.0.0.1"),  # ideographic full stops
    ("[::1]", "::1"),
    ("::1", "::1"),
    ("[0:0:0:0:0:0:0:1]", "::1"),
    ("[::FFFF:127.0.0.1]", "::ffff:7f00:1"),
    ("[fe80::1%25eth0]", "fe80::1"),
    ("fe80::1%eth0", "fe80::1"),
    ("8.8.8.8", "8.8.8.8"),
]


@pytest.mark.parametrize(("host", "expected"), SPELLINGS)
def test_parse_ip_literal_spellings(host: str, expected: str) -> None:
    assert parse_ip_literal(host) == ip_address(expected)


@pytest.mark.parametrize(
    "host", ["example.com", "media.test", "1.2.3.4.5", "256.0.0.1", "08.0.0.1", "0x1g.0.0.1", "1_0.0.0.1", "", "[::1"]
)
def test_parse_ip_literal_refuses_names_and_malformed(host: str) -> None:
    assert parse_ip_literal(host) is None


BAD_URLS = [
    "http://127.0.0.1/a.jpg",
    "http://127.0.0.1:8080/a.jpg",
    "http://127.1/a.jpg",
    "http://127.0.1/",
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://0x7f.0x0.0x0.0x1/",
    "http://0x7f000001/",
    "http://0x7F.1/",
    "http://127.0.0.1./",
    "http://0/",
    "http://0.0.0.0/",
    "http://10.0.0.1/",
    "http://10.1.2/",
    "http://012.0.0.1/",
    "http://100.64.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://0xa9fea9fe/",
    "http://2852039166/",
    "http://172.16.0.1/",
    "http://192.168.0.1/",
    "http://192.0.0.1/",
    "http://198.18.0.1/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "http://[::1]/",
    "http://[::]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::127.0.0.1]/",
    "http://[fc00::1]/",
    "http://[fe80::1%25eth0]/",
    "http://[ff02::1]/",
    "http://[2002:7f00:1::1]/",
    "http://[64:ff9b::7f00:1]/",
    "http://localhost/",
    "http://LOCALHOST/",
    "http://localhost./",
    "http://LocalHost:8000/a.png",
    "http://media.localhost/",
    "http://a.b.LOCALHOST./",
    "http://user:pass@example.com/",
    "http://example.com@127.0.0.1/",
    "http://example.com:80@10.0.0.1/",
    "http://@example.com/",
    "http://example.com\\@127.0.0.1/",
    "http://%31%32%37.0.0.1/",
    "http://\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11/",
    "http://1.2.3.4.5/",
    "http://256.1.1.1/",
    "http:///a.jpg",
    "http://exa mple.com/",
    "http://example.com:99999/",
    "ftp://example.com/a.jpg",
    "file:///etc/passwd",
    "gopher://example.com/",
    "https://" + "a" * 2040 + ".com/",
    "http://xn--.example/",
]


@pytest.mark.parametrize("url", BAD_URLS)
def test_url_problem_refuses(url: str) -> None:
    assert url_problem(url, allow_private=False, schemes=("http", "https")) is not None


GOOD_URLS = [
    "http://example.com/a.jpg",
    "https://EXAMPLE.com/a.jpg",
    "https://example.com./a.jpg",
    "https://cdn.example.com:8443/a/b.png?x=1#frag",
    "https://8.8.8.8/a.jpg",
    "https://[2606:4700:4700::1111]/a.jpg",
    "https://bücher.example/bild.jpg",
    "https://xn--bcher-kva.example/bild.jpg",
    "https://例え.テスト/画像.png",
    "https://localhost.example.com/a.jpg",
    "https://my_bucket.s3.example.com/a.jpg",
]


@pytest.mark.parametrize("url", GOOD_URLS)
def test_url_problem_accepts_public(url: str) -> None:
    assert url_problem(url, allow_private=False, schemes=("http", "https")) is None


def test_reasons_name_the_rule() -> None:
    def reason(url: str, schemes: tuple[str, ...] = ("https",)) -> str | None:
        return url_problem(url, allow_private=False, schemes=schemes)

    assert reason("http://example.com/") == "must use https"
    assert reason("https://localhost/") == "must not point to localhost"
    assert reason("https://0x7f.1/") == "must not point to a private, loopback or reserved address"
    assert reason("https://u:p@example.com/") == "must not contain user credentials (user@host)"
    assert reason("https://" + "a" * 2048) == "must be at most 2048 characters"


def test_allow_private_admits_loopback_and_plain_http() -> None:
    for url in ("http://127.0.0.1:8000/hook", "http://localhost/x", "http://[::1]/", "http://10.1.2/"):
        assert url_problem(url, allow_private=True, schemes=("https",)) is None


def test_allow_private_still_enforces_length_userinfo_and_scheme() -> None:
    def reason(url: str) -> str | None:
        return url_problem(url, allow_private=True, schemes=("https",))

    assert reason("http://localhost/" + "a" * 2048) is not None
    assert reason("http://user@localhost/") is not None
    assert reason("ftp://localhost/") is not None


def test_length_limit_is_exactly_2048() -> None:
    base = "https://example.com/"
    assert url_problem(base + "a" * (2048 - len(base)), allow_private=False, schemes=("https",)) is None
    assert url_problem(base + "a" * (2049 - len(base)), allow_private=False, schemes=("https",)) is not None


def _resolver(answers: dict[str, list[str]], calls: list[str] | None = None) -> Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers[host]

    return resolve


async def test_resolve_checked_refuses_a_name_resolving_to_private() -> None:
    resolver = _resolver({"media.test": ["10.0.0.7"]})
    with pytest.raises(BlockedAddress) as caught:
        await resolve_checked("media.test", 443, allow_private=False, resolver=resolver)
    assert caught.value.host == "media.test" and caught.value.address == "10.0.0.7"
    assert "media.test" in str(caught.value) and "10.0.0.7" in str(caught.value)


async def test_resolve_checked_refuses_when_any_answer_is_private() -> None:
    resolver = _resolver({"media.test": ["93.184.216.34", "::1"]})
    with pytest.raises(BlockedAddress):
        await resolve_checked("media.test", 443, allow_private=False, resolver=resolver)


async def test_resolve_checked_returns_checked_public_addresses() -> None:
    resolver = _resolver({"media.test": ["93.184.216.34", "2606:4700::1", "93.184.216.34"]})
    got = await resolve_checked("media.test", 443, allow_private=False, resolver=resolver)
    assert got == [IPv4Address("93.184.216.34"), IPv6Address("2606:4700::1")]


async def test_rebinding_resolver_is_judged_on_every_lookup() -> None:
    """Public on the first lookup, private on the second: each resolution is checked on its own."""
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])

    async def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    first = await resolve_checked("rebind.test", 80, allow_private=False, resolver=rebinding)
    assert first == [IPv4Address("93.184.216.34")]
    with pytest.raises(BlockedAddress):
        await resolve_checked("rebind.test", 80, allow_private=False, resolver=rebinding)


async def test_resolve_checked_refuses_empty_and_garbage_answers() -> None:
    with pytest.raises(BlockedAddress, match="no address"):
        await resolve_checked("empty.test", 80, allow_private=False, resolver=_resolver({"empty.test": []}))
    with pytest.raises(BlockedAddress):
        await resolve_checked("odd.test", 80, allow_private=True, resolver=_resolver({"odd.test": ["not-an-ip"]}))


async def test_resolve_checked_checks_literals_without_the_resolver() -> None:
    calls: list[str] = []
    resolver = _resolver({}, calls)
    with pytest.raises(BlockedAddress):
        await resolve_checked("0x7f.1", 80, allow_private=False, resolver=resolver)
    assert await resolve_checked("[::1]", 80, allow_private=True, resolver=resolver) == [IPv6Address("::1")]
    assert calls == []


async def test_resolve_checked_allows_private_when_told() -> None:
    resolver = _resolver({"db.internal": ["10.0.0.7"]})
    assert await resolve_checked("db.internal", 5432, allow_private=True, resolver=resolver) == [
        IPv4Address("10.0.0.7")
    ]


async def test_resolver_failure_propagates_as_oserror() -> None:
    with pytest.raises(socket.gaierror):
        await resolve_checked("nowhere.test", 80, allow_private=False, resolver=_resolver({}))
