"""Key logging: write a connection's secrets where Wireshark can read them.

Run it with ``python docs/examples/key_log.py``. Anyone holding a key log can
decrypt the logged connections: use it for debugging only, never in production.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import trio
import trio.testing

from triotls import CertifiedKey, ClientConfig, ServerConfig, TLSStream, TrustStore
from triotls._throwaway import make_throwaway_pki
from triotls.config import KeyLogFile


async def log_one_connection(key_log_path: Path) -> None:
    """Handshake with a client whose config appends its secrets to ``key_log_path``."""
    pki = make_throwaway_pki()
    client_config = ClientConfig(
        trust=TrustStore.from_pem(pki.ca_pem), key_log=KeyLogFile(key_log_path)
    )
    server_config = ServerConfig(certificates=(CertifiedKey.from_pem(pki.chain_pem, pki.key_pem),))
    client_transport, server_transport = trio.testing.memory_stream_pair()
    client = TLSStream(client_transport, client_config, server_hostname="localhost")
    server = TLSStream(server_transport, server_config, server_side=True)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.do_handshake)
        await client.do_handshake()


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, trio.fail_after(30):
        path = Path(tmp) / "keys.log"
        await log_one_connection(path)
        for line in path.read_text().splitlines():
            label, client_random, secret = line.split()
            print(
                f"{label} <{len(client_random) // 2}-byte random> <{len(secret) // 2}-byte secret>"
            )


if __name__ == "__main__":
    trio.run(main)
