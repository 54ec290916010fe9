"""A TCP proxy on 127.0.0.1 in front of a database server, which a test can cut.

    with TcpProxy(3306) as proxy:          # loopsync connects to proxy.port instead
        ...                                # cycle 1 goes through
        proxy.cut(refuse=True)             # every live connection reset, new ones refused
        ...                                # cycle 2 fails: the server looks down
        proxy.restore()                    # listening again, on the same port
        proxy.cut_after(1_000_000)         # reset everything once 1 MB more came from the server

A cut resets both sides of every connection (RST to loopsync, as when a server
process dies or a firewall drops the flow), so the client sees it at once rather
than after a timeout. Everything is driven by events and joins: no sleeps.
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
from collections.abc import Callable
from types import TracebackType

_CHUNK = 65536
# SO_LINGER on, zero seconds: close() sends RST instead of FIN.
_RESET = struct.pack("ii", 1, 0)


class _Link:
    """One client connection and its connection to the server, pumped by two threads."""

    def __init__(self, proxy: TcpProxy, client: socket.socket, server: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.server = server
        self._closed = False
        self._lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True),
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True),
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def _pump(self, source: socket.socket, target: socket.socket, from_server: bool) -> None:
        try:
            while True:
                data = source.recv(_CHUNK)
                if not data:
                    break
                target.sendall(data)
                if from_server:
                    self.proxy._count_from_server(len(data))
        except OSError:
            pass
        self.reset()

    def reset(self) -> None:
        """Close both sockets with RST; the pumps stop. Safe to call more than once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for sock in (self.client, self.server):
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self.proxy._forget(self)


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target_host`:`target_port` until cut."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.accepted = 0
        self.cut_done = threading.Event()
        self._links: list[_Link] = []
        self._lock = threading.Lock()
        self._cut_after: int | None = None
        self._pending: tuple[Callable[[], object], threading.Event] | None = None
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = socket.socketpair()
        self._selector.register(self._wake_read, selectors.EVENT_READ)
        self._listener: socket.socket | None = None
        self._stopping = False
        self.port = self._listen(0)
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    # -- what a test uses

    def cut(self, *, refuse: bool = False) -> None:
        """Reset every live connection; with `refuse`, also refuse new ones until `restore()`."""
        if refuse:
            self._call_in_loop(self._stop_listening)
        with self._lock:
            links, self._links = self._links, []
            self._cut_after = None
        for link in links:
            link.reset()
        for link in links:
            for thread in link.threads:
                if thread is not threading.current_thread():
                    thread.join()
        self.cut_done.set()

    def restore(self) -> None:
        """Accept connections again, on the same port."""
        self._call_in_loop(lambda: self._listen(self.port))

    def cut_after(self, byte_count: int) -> None:
        """Cut every connection once `byte_count` more bytes have come from the server."""
        with self._lock:
            self._cut_after = byte_count
        self.cut_done.clear()

    @property
    def live(self) -> int:
        """How many connections are open through the proxy."""
        with self._lock:
            return len(self._links)

    def close(self) -> None:
        """Cut everything and stop the proxy's threads."""
        self._stopping = True
        self._wake()
        self._thread.join()
        self.cut()
        if self._listener is not None:
            self._listener.close()
        self._selector.close()
        self._wake_read.close()
        self._wake_write.close()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals

    def _listen(self, port: int) -> int:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(16)
        listener.setblocking(False)
        self._listener = listener
        self._selector.register(listener, selectors.EVENT_READ)
        bound: int = listener.getsockname()[1]
        return bound

    def _stop_listening(self) -> None:
        if self._listener is not None:
            self._selector.unregister(self._listener)
            self._listener.close()
            self._listener = None

    def _call_in_loop(self, action: Callable[[], object]) -> None:
        """Run `action` on the accept thread (which owns the selector) and wait for it."""
        done = threading.Event()
        with self._lock:
            self._pending = (action, done)
        self._wake()
        done.wait()

    def _wake(self) -> None:
        self._wake_write.send(b"x")

    def _accept_loop(self) -> None:
        while True:
            for key, _ in self._selector.select():
                if key.fileobj is self._wake_read:
                    self._wake_read.recv(64)
                    if self._stopping:
                        return
                    with self._lock:
                        pending, self._pending = self._pending, None
                    if pending is not None:
                        action, done = pending
                        action()
                        done.set()
                elif self._listener is not None and key.fileobj is self._listener:
                    self._accept()

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        client.setblocking(True)
        try:
            server = socket.create_connection(self.target)
        except OSError:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
            client.close()
            return
        for sock in (client, server):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = _Link(self, client, server)
        with self._lock:
            self.accepted += 1
            self._links.append(link)
        link.start()

    def _forget(self, link: _Link) -> None:
        with self._lock:
            if link in self._links:
                self._links.remove(link)

    def _count_from_server(self, byte_count: int) -> None:
        with self._lock:
            if self._cut_after is None:
                return
            self._cut_after -= byte_count
            due = self._cut_after <= 0
        if due:
            threading.Thread(target=self.cut, daemon=True).start()
