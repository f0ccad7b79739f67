"""First client and first server: a TLS 1.3 echo service on loopback.

Run it with ``python docs/examples/first_client_server.py``. It creates a
throwaway certificate authority, writes its files to a temporary directory,
serves an echo handler over TLS, connects a client to it, and prints what
both ends negotiated.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import trio

from triotls import (
    CertifiedKey,
    ClientConfig,
    ServerConfig,
    TLSStream,
    TrustStore,
    open_tls_over_tcp_stream,
    serve_tls_over_tcp,
)
from triotls._throwaway import make_throwaway_pki


def write_throwaway_files(directory: Path) -> None:
    """Write ca.pem, server-chain.pem and server-key.pem for a test CA.

    A real deployment has these files already (from a CA, or ``trustme`` in
    tests); the throwaway CA exists only so that this example runs anywhere.
    """
    pki = make_throwaway_pki(("localhost", "127.0.0.1"))
    (directory / "ca.pem").write_bytes(pki.ca_pem)
    (directory / "server-chain.pem").write_bytes(pki.chain_pem)
    (directory / "server-key.pem").write_bytes(pki.key_pem)


async def echo_handler(stream: TLSStream) -> None:
    """Send back everything the client sends, until it closes its side."""
    # serve_tls_over_tcp completed the handshake before calling us.
    async with stream:  # aclose() on the way out: close_notify, then close TCP
        data = await stream.receive_some()
        print(f"server: {stream.version}, {stream.cipher_suite!r}, SNI {stream.server_name!r}")
        while data:
            await stream.send_all(data)
            data = await stream.receive_some()


async def run_server(
    directory: Path, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve echo_handler over TLS on a free loopback port; report the port."""
    config = ServerConfig(
        certificates=(
            CertifiedKey.from_files(directory / "server-chain.pem", directory / "server-key.pem"),
        ),
    )
    async with trio.open_nursery() as nursery:
        serve = functools.partial(serve_tls_over_tcp, host="127.0.0.1")
        listeners = await nursery.start(serve, echo_handler, 0, config)  # port 0: any free port
        transport_listener = listeners[0].transport_listener
        assert isinstance(transport_listener, trio.SocketListener)  # made by open_tcp_listeners
        task_status.started(transport_listener.socket.getsockname()[1])


async def run_client(port: int, directory: Path) -> bytes:
    """Connect, check what was negotiated, send a message and read the echo."""
    config = ClientConfig(trust=TrustStore.from_pem(directory / "ca.pem"))
    stream = await open_tls_over_tcp_stream("127.0.0.1", port, config, server_hostname="localhost")
    async with stream:
        await stream.do_handshake()  # optional: the first send/receive would do it
        print(f"client: {stream.version}, {stream.cipher_suite!r}, {stream.group!r}")
        await stream.send_all(b"hello, TLS 1.3")
        await stream.send_eof()  # close_notify: we send no more, but keep receiving
        reply = bytearray()
        while chunk := await stream.receive_some():
            reply += chunk
        print(f"client: the server closed with {stream.close_reason!r}")
    return bytes(reply)


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, trio.fail_after(30):
        directory = Path(tmp)
        write_throwaway_files(directory)
        async with trio.open_nursery() as nursery:
            port = await nursery.start(run_server, directory)
            reply = await run_client(port, directory)
            print(f"client: received {reply!r}")
            nursery.cancel_scope.cancel()  # stop serving


if __name__ == "__main__":
    trio.run(main)
