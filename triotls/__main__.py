"""``python -m triotls``: a demo, a client like gnutls-cli, a server like gnutls-serv."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import trio

from . import __version__
from ._throwaway import make_throwaway_pki
from .config import CertifiedKey, ClientConfig, ServerConfig, TrustStore
from .engine.enums import NamedGroup
from .errors import TLSError
from .listener import open_tls_over_tcp_stream, serve_tls_over_tcp
from .stream import TLSStream


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    command: str | None = args.command
    if command == "server" and args.key and not args.cert:
        parser.error("--key needs --cert (without --cert a throwaway certificate is used)")
    if command == "server" and args.write_ca and args.cert:
        parser.error("--write-ca goes with the throwaway certificate, not with --cert")
    try:
        if command == "demo":
            trio.run(_demo, args.group)
        elif command == "client":
            return trio.run(_client, args)
        elif command == "server":
            trio.run(_server, args)
        else:
            parser.print_help()
            return 2
    except KeyboardInterrupt:
        return 130
    except BaseException as exc:
        # Errors from inside a nursery arrive in (nested) exception groups.
        leaves = _leaves(exc)
        if not all(isinstance(leaf, _USER_ERRORS) for leaf in leaves):
            raise
        for leaf in leaves:
            print(f"triotls: {type(leaf).__name__}: {leaf}", file=sys.stderr)
        return 1
    return 0


# What the CLI reports in one line: bad input, files, network, TLS failures.
_USER_ERRORS: tuple[type[BaseException], ...] = (TLSError, ValueError, OSError)


def _leaves(exc: BaseException) -> list[BaseException]:
    group: Sequence[BaseException] | None = getattr(exc, "exceptions", None)
    if group is None:
        return [exc]
    return [leaf for inner in group for leaf in _leaves(inner)]


def _address(text: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 hosts in brackets) for the client's argument."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise argparse.ArgumentTypeError(
            f"expected HOST:PORT with a port from 1 to 65535, not {text!r}"
        )
    return host.strip("[]"), int(port_text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m triotls", description=__doc__)
    parser.add_argument("--version", action="version", version=f"triotls {__version__}")
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="handshake with ourselves on loopback and show the result")
    demo.add_argument(
        "--group",
        choices=[
            g.name.lower() for g in NamedGroup if g not in (NamedGroup.SECP521R1, NamedGroup.X448)
        ],
        default=None,
        help="force one key exchange group (default: the client's default offer)",
    )
    client = sub.add_parser(
        "client", help="connect to HOST:PORT; stdin to the server, server to stdout"
    )
    client.add_argument("address", type=_address, help="HOST:PORT")
    client.add_argument("--cafile", help="PEM file of trusted roots (default: system trust)")
    client.add_argument("--sni", help="server name to send and verify (default: HOST)")
    client.add_argument("--alpn", action="append", default=[], help="ALPN protocol to offer")
    client.add_argument("--handshake-timeout", type=float, default=40.0)
    client.add_argument("--insecure", action="store_true", help="do not verify the server")
    server = sub.add_parser("server", help="accept TLS connections and echo or serve a page")
    server.add_argument("--host", default="127.0.0.1")
    server.add_argument("--port", type=int, default=4433)
    server.add_argument("--cert", help="PEM certificate chain (default: a throwaway one)")
    server.add_argument("--key", help="PEM private key for --cert")
    server.add_argument("--write-ca", help="with a throwaway certificate, write its CA here")
    server.add_argument("--alpn", action="append", default=[], help="ALPN protocol to accept")
    server.add_argument("--page", action="store_true", help="answer with a static HTTP page")
    server.add_argument("--handshake-timeout", type=float, default=40.0)
    return parser


def _describe(stream: TLSStream, side: str) -> list[str]:
    n = stream.negotiated
    assert n is not None  # only called after the handshake
    lines = [
        f"{side}: {stream.version}, {n.cipher_suite.name}, "
        f"group {n.group.name if n.group else '-'}",
        f"{side}: signature {n.signature_scheme.name if n.signature_scheme else '-'}, "
        f"ALPN {n.alpn_protocol or '-'}, SNI {n.server_name or '-'}, {n.handshake_kind.value}",
    ]
    if n.verified_chain is not None:
        names = " <- ".join(c.subject.rfc4514_string() for c in n.verified_chain)
        lines.append(f"{side}: verified chain {names}")
    return lines


async def _demo(group: str | None) -> None:
    pki = make_throwaway_pki()
    server_config = ServerConfig(
        certificates=(CertifiedKey.from_pem(pki.chain_pem, pki.key_pem),),
        alpn_protocols=("h2", "http/1.1"),
    )
    client_config = ClientConfig(
        trust=TrustStore.from_pem(pki.ca_pem), alpn_protocols=("h2", "http/1.1")
    )
    if group is not None:
        forced = (NamedGroup[group.upper()],)
        client_config = dataclasses.replace(client_config, groups=forced, key_share_groups=forced)
    server_lines: list[str] = []

    async def handler(stream: TLSStream) -> None:
        server_lines.extend(_describe(stream, "server"))
        request = await stream.receive_some()
        await stream.send_all(b"hello from the triotls server; you said: " + bytes(request))
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(serve_tls_over_tcp, handler, 0, server_config)
        port = listeners[0].transport_listener.socket.getsockname()[1]
        print(f"server listening on 127.0.0.1:{port} (throwaway ECDSA P-256 CA)")
        start = trio.current_time()
        stream = await open_tls_over_tcp_stream("127.0.0.1", port, client_config)
        connected = trio.current_time()
        await stream.do_handshake()
        done = trio.current_time()
        await stream.send_all(b"hello over TLS 1.3")
        reply = await stream.receive_some()
        while chunk := await stream.receive_some():
            reply += chunk
        print("\n".join(_describe(stream, "client")))
        print("\n".join(server_lines))
        how = stream.close_reason.value if stream.close_reason else "-"
        print(f"client: received {reply.decode()!r}; the server closed with {how}")
        print(
            f"timings: TCP connect {1000 * (connected - start):.1f} ms, "
            f"TLS handshake {1000 * (done - connected):.1f} ms"
        )
        await stream.aclose()
        nursery.cancel_scope.cancel()


async def _client(args: argparse.Namespace) -> int:
    host, port = args.address
    config = ClientConfig(
        trust=TrustStore.from_pem(args.cafile) if args.cafile else None,
        verify_peer=not args.insecure,
        check_hostname=not args.insecure,
        alpn_protocols=tuple(args.alpn),
        handshake_timeout=args.handshake_timeout,
    )
    stream = await open_tls_over_tcp_stream(host, port, config, server_hostname=args.sni)
    async with stream:
        await stream.do_handshake()
        for line in _describe(stream, "client"):
            print(line, file=sys.stderr)
        stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
        stdout = trio.lowlevel.FdStream(os.dup(sys.stdout.fileno()))

        async def pump_stdin() -> None:
            while data := await stdin.receive_some():
                await stream.send_all(data)
            await stream.send_eof()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(pump_stdin)
            while data := await stream.receive_some():
                await stdout.send_all(data)
            nursery.cancel_scope.cancel()
    return 0


async def _server(args: argparse.Namespace) -> None:
    if args.cert:
        certified = CertifiedKey.from_files(args.cert, args.key or args.cert)
    else:
        pki = make_throwaway_pki()
        certified = CertifiedKey.from_pem(pki.chain_pem, pki.key_pem)
        if args.write_ca:
            Path(args.write_ca).write_bytes(pki.ca_pem)
    config = ServerConfig(
        certificates=(certified,),
        alpn_protocols=tuple(args.alpn),
        handshake_timeout=args.handshake_timeout,
    )

    async def handler(stream: TLSStream) -> None:
        try:
            if args.page:
                await stream.receive_some()
                body = b"<html><body>triotls</body></html>\n"
                await stream.send_all(
                    b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                    + str(len(body)).encode()
                    + b"\r\n\r\n"
                    + body
                )
            else:
                while data := await stream.receive_some():
                    await stream.send_all(data)
        except trio.BrokenResourceError as exc:
            print(f"connection failed: {exc}", file=sys.stderr)
        finally:
            await stream.aclose()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(serve_tls_over_tcp, host=args.host), handler, args.port, config
        )
        # The bound port, so that --port 0 (any free port) is usable.
        port = listeners[0].transport_listener.socket.getsockname()[1]
        print(f"listening on {args.host}:{port}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
