"""TLSStream and certificate verification: the error in required mode, ``verification`` after.

The engine tests (``tests/engine/test_verification_status.py``) cover the
flags; these check what a trio program sees: the error a stream raises (also
a BrokenResourceError), the alert the server stream receives, and
``TLSStream.verification`` in report mode.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from tests.stream.helpers import assert_data_flows, handshake_both
from tests.support.engine_pairs import pki
from triotls import (
    AlertReceived,
    CertificateVerificationError,
    ClientConfig,
    ServerConfig,
    VerificationResult,
    VerificationStatus,
)
from triotls.engine.enums import AlertDescription
from triotls.stream import TLSStream


def _pair(
    server_hostname: str = "localhost", **client_fields: object
) -> tuple[TLSStream, TLSStream]:
    """A client stream checking ``server_hostname`` and a server stream, in memory."""
    chain = pki()
    fields: dict[str, object] = {"trust": chain.trust, **client_fields}
    client_config = ClientConfig(**fields)  # type: ignore[arg-type]  # ClientConfig's own fields
    client_transport, server_transport = trio.testing.memory_stream_pair()
    client = TLSStream(client_transport, client_config, server_hostname=server_hostname)
    server_config = ServerConfig(certificates=(chain.certified,))
    return client, TLSStream(server_transport, server_config, server_side=True)


async def test_required_mode_raises_with_the_status_and_the_server_reads_the_alert() -> None:
    client, server = _pair("example.org")
    server_error: list[AlertReceived] = []

    async def serve() -> None:
        with pytest.raises(AlertReceived) as info:
            await server.do_handshake()
        server_error.append(info.value)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        with pytest.raises(CertificateVerificationError, match="name mismatch") as info:
            await client.do_handshake()
    error = info.value
    assert isinstance(error, trio.BrokenResourceError)
    assert error.status == VerificationStatus.INVALID | VerificationStatus.UNEXPECTED_OWNER
    assert server_error[0].description == AlertDescription.BAD_CERTIFICATE
    assert client.verification is None  # the handshake did not complete


async def test_report_mode_exposes_the_status_on_the_stream_and_data_flows() -> None:
    client, server = _pair("example.org", verify_mode="report")
    await handshake_both(client, server)
    result = client.verification
    assert result is not None
    assert result.status == VerificationStatus.INVALID | VerificationStatus.UNEXPECTED_OWNER
    assert result.server_name == "example.org"
    assert result.chain == pki().certified.chain
    await assert_data_flows(client, server)


async def test_verification_is_clean_after_a_verified_handshake() -> None:
    client, server = _pair()
    before = client.verification
    await handshake_both(client, server)
    result = client.verification
    assert before is None
    assert result is not None and result.is_valid
    assert result.verified_chain is not None
    assert result.verified_chain[-1] == pki().trust.certificates[0]
    assert server.verification is None  # servers do not verify client certificates yet


async def test_callback_decides_inside_the_stream_handshake() -> None:
    seen: list[VerificationResult] = []

    def accept_but_remember(result: VerificationResult) -> bool:
        seen.append(result)
        return True

    client, server = _pair("example.org", verify_callback=accept_but_remember)
    await handshake_both(client, server)
    assert [result.status for result in seen] == [
        VerificationStatus.INVALID | VerificationStatus.UNEXPECTED_OWNER
    ]
    assert client.verification == seen[0]
