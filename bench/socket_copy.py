"""`python -m bench.socket_copy SOURCE TARGET`: a file copied through loopback TCP, no HTTP.

The fastest any network transfer into a file can go on this machine. A sender reads SOURCE and
writes it to a socket; a receiver reads the socket and writes TARGET; both use 1 MiB buffers.
An upload (curl -> server -> file) or a download (server -> curl -> file) does this same work
plus HTTP, so this is their ceiling. `cp` is not: it copies inside the kernel
(copy_file_range) and never crosses a socket or user space.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from pathlib import Path

BUFFER = 1024 * 1024


def _receive(listener: socket.socket, target: Path) -> None:
    connection, _ = listener.accept()
    buffer = memoryview(bytearray(BUFFER))
    with connection, open(target, "wb", buffering=0) as out:
        while received := connection.recv_into(buffer):
            out.write(buffer[:received])


def copy_through_socket(source: Path, target: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        receiver = threading.Thread(target=_receive, args=(listener, target))
        receiver.start()
        with socket.create_connection(listener.getsockname()) as sender:
            with open(source, "rb", buffering=0) as data:
                while chunk := data.read(BUFFER):
                    sender.sendall(chunk)
            sender.shutdown(socket.SHUT_WR)
            receiver.join()
    if os.path.getsize(target) != os.path.getsize(source):
        raise RuntimeError("socket copy lost bytes")


if __name__ == "__main__":
    copy_through_socket(Path(sys.argv[1]), Path(sys.argv[2]))
