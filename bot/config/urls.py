"""Which URLs may carry a credential in clear. Pure."""

from __future__ import annotations

import ipaddress


def is_loopback_host(host: str) -> bool:
    """True for `localhost` and any loopback address (127.0.0.0/8, ::1, ::ffff:127.x.x.x).

    A name other than `localhost` is not resolved: what it points at may change after the
    check, and a config that says 127.0.0.1 says what it means.
    """
    name = host.strip().rstrip(".").casefold()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def clear_text_credentials(scheme: str, host: str) -> bool:
    """True when a request to `scheme://host` would send its token where anyone on the path reads it.

    Only https protects the token; plain http is accepted to loopback, where tests and the
    sandbox listen and no network lies between.
    """
    return scheme.casefold() != "https" and not is_loopback_host(host)
