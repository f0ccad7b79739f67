"""0-RTT early data: a client sends its request with the ClientHello when it resumes.

Run it with ``python docs/examples/early_data.py``. Everything happens on
loopback: a server that accepts early data for requests that are safe to
repeat, and a client that sends its request as early data whenever its
cached session allows it, and again after the handshake when it did not go.
"""

from __future__ import annotations

import dataclasses

import trio

from triotls import (
    CertifiedKey,
    ClientConfig,
    EarlyDataStatus,
    ServerConfig,
    SessionCache,
    TLSListener,
    TLSStream,
    TrustStore,
    open_tls_over_tcp_listeners,
    open_tls_over_tcp_stream,
)
from triotls._throwaway import make_throwaway_pki


def server_config_with_early_data(certified: CertifiedKey) -> ServerConfig:
    """0-RTT is off by default; a server opts in with the most it will buffer."""
    return ServerConfig(certificates=(certified,), max_early_data_size=16_384)


async def read_request(stream: TLSStream) -> tuple[bytes, str]:
    """One line-terminated request, from the early data if the client sent it there."""
    request = b""
    while not request.endswith(b"\n"):
        chunk = await stream.receive_early_data()
        if not chunk:
            break  # no (more) early data: the rest comes after the handshake
        request += chunk
    if request.endswith(b"\n"):
        return request, "0-RTT"
    while not request.endswith(b"\n"):
        data = await stream.receive_some()
        if not data:
            break
        request += data
    return request, "1-RTT"


async def handle(stream: TLSStream) -> None:
    """Answer a request; early data only when the request is safe to repeat."""
    async with stream:
        request, how = await read_request(stream)
        if how == "0-RTT" and not request.startswith(b"GET "):
            # Early data may be a replay (RFC 8446 §8): a request that changes
            # something must wait until the handshake proves the client live.
            await stream.do_handshake()
        done = "before" if stream.negotiated is None else "after"
        print(f"  server read {request!r} as {how} data, answering {done} the client's Finished")
        await stream.send_all(b"200 OK " + request)


async def fetch(port: int, config: ClientConfig, request: bytes) -> None:
    """Send ``request`` as early data if the cached session allows, else after the handshake."""
    stream = await open_tls_over_tcp_stream("127.0.0.1", port, config, server_hostname="localhost")
    async with stream:
        await stream.do_handshake(early_data=request)
        if stream.early_data_status is not EarlyDataStatus.ACCEPTED:
            # Not offered, or refused by the server: it did not arrive.
            await stream.send_all(request)
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = await stream.receive_some()
            if not chunk:
                break
            reply += chunk
        print(f"  client: {stream.handshake_kind}, early data {stream.early_data_status}")


async def serve(listeners: list[TLSListener]) -> None:
    """Accept connections and hand them over before the handshake is done.

    ``serve_tls_over_tcp`` completes every handshake before calling the
    handler (early data is still there, through ``receive_early_data``);
    serving the listeners directly lets the handler answer in 0.5-RTT.
    """
    await trio.serve_listeners(handle, listeners)


async def main() -> None:
    pki = make_throwaway_pki(("localhost", "127.0.0.1"))
    certified = CertifiedKey.from_pem(pki.chain_pem, pki.key_pem)
    client_config = ClientConfig(
        trust=TrustStore.from_pem(pki.ca_pem), session_cache=SessionCache()
    )
    server_config = server_config_with_early_data(certified)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            listeners = await open_tls_over_tcp_listeners(0, server_config, host="127.0.0.1")
            transport = listeners[0].transport_listener
            assert isinstance(transport, trio.SocketListener)
            port = transport.socket.getsockname()[1]
            nursery.start_soon(serve, listeners)

            print("first visit (no ticket yet):")
            await fetch(port, client_config, b"GET /index.html\n")
            print("second visit (resumed, the request goes as early data):")
            await fetch(port, client_config, b"GET /index.html\n")
            print("a request that is not safe to repeat:")
            await fetch(port, client_config, b"POST /order\n")
            print("the server turned 0-RTT off (same ticket keys):")
            listeners[0].config = dataclasses.replace(server_config, max_early_data_size=0)
            await fetch(port, client_config, b"GET /index.html\n")
            nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
