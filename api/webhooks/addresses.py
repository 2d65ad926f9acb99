"""Where a webhook may post: http(s) URLs whose host resolves to public addresses only, unless
the operator allows private ones (FITLENS_WEBHOOK_ALLOW_PRIVATE). A receiver on the server's
own network (its database, a cloud metadata service) must not be reachable by anyone who can
register a URL."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL = 2000


class Refused(ValueError):
    """The URL may not be posted to (the message says why)."""


@dataclass(frozen=True)
class Target:
    url: str
    host: str
    port: int
    addresses: tuple[str, ...]  # what the host resolved to, all of them allowed


def check_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL; Refused otherwise."""
    if len(url) > MAX_URL:
        raise Refused(f"longer than {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Refused(f"not a URL ({exc})") from exc
    if parts.scheme not in ("http", "https"):
        raise Refused("only http and https URLs")
    if not parts.hostname:
        raise Refused("no host")
    if parts.username or parts.password:
        raise Refused("no credentials in the URL (the body is signed instead)")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def resolve(url: str, allow_private: bool) -> Target:
    """The URL's host, resolved now, each address checked; Refused if any is private,
    loopback, link-local, multicast or reserved (and not allowed), or if none resolves."""
    _, host, port = check_url(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Refused(f"host {host!r} does not resolve") from exc
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        if not ip.is_global and not allow_private:
            raise Refused(
                f"host {host!r} resolves to {address}, a private or local address "
                "(the operator can allow those: FITLENS_WEBHOOK_ALLOW_PRIVATE)"
            )
    if not addresses:
        raise Refused(f"host {host!r} does not resolve")
    return Target(url, host, port, addresses)
