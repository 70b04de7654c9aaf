"""Every connection of the service has Nagle's algorithm off, also on the listening socket
uvicorn binds itself for several workers (made with protocol number 0, which asyncio does not
recognise as TCP). With Nagle on, an answer's last small write waits for the client's delayed
ACK: about 40 ms a request on loopback."""

from __future__ import annotations

import asyncio
import socket

from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from solr_policy.cli.serve import NoDelayH11


async def _server_side_nodelay(protocol_class: type[H11Protocol]) -> int:
    """TCP_NODELAY of the server's end of one connection accepted on uvicorn's own socket."""
    config = Config(app=lambda scope, receive, send: None, host="127.0.0.1", port=0, http=protocol_class)
    config.load()
    listening = config.bind_socket()  # what `--workers N` listens on: socket.socket(family), protocol 0
    made: list[H11Protocol] = []

    def protocol() -> H11Protocol:
        made.append(protocol_class(config, ServerState(), {}))
        return made[-1]

    loop = asyncio.get_running_loop()
    server = await loop.create_server(protocol, sock=listening)
    try:
        _reader, writer = await asyncio.open_connection(*listening.getsockname()[:2])
        for _ in range(100):
            if made and made[-1].transport is not None:
                break
            await asyncio.sleep(0.01)
        value = made[-1].transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        writer.close()
        return value
    finally:
        server.close()
        await server.wait_closed()


def test_every_connection_of_the_service_has_nagle_off():
    assert asyncio.run(_server_side_nodelay(NoDelayH11)) != 0
