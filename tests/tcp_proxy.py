"""A TCP proxy a test can break: the network between the ETL and a server, made faulty on demand.

- `cut_at(offset, then_down=False, answer_to=b"")`: the next server answer longer than `offset`
  bytes (an answer = what the server sends after a client packet, e.g. a streamed result), to a
  client packet containing `answer_to`, is forwarded up to exactly that byte, then both sockets
  are reset: the client sees a real TCP break mid-result. Cuts apply in the order planned. With
  `then_down`, the proxy also goes down at that moment.
- `down()`: the listening socket is closed (new connections are refused, as by a server that is
  restarting) and every live connection is reset; `up()` listens again on the same port.

Real sockets only: what the client meets is what a dropped network or a restarting server gives.
"""
from __future__ import annotations

import selectors
import socket
import struct
import threading
from collections import deque

_LINGER_RESET = struct.pack("ii", 1, 0)  # close() sends RST, not FIN


def _reset(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    except OSError:
        pass
    sock.close()


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self._lock = threading.Lock()
        self._cuts: deque[tuple[int, bool, bytes]] = deque()
        self._live: set[socket.socket] = set()
        self.accepted = 0
        self.cuts_done = 0
        self.answers: list[int] = []  # sizes of the server's answers, for a test's diagnostics
        self._listener: socket.socket | None = None
        self._closing = False
        self.port = 0
        self.up()

    # --- control ------------------------------------------------------------------------------
    def cut_at(self, offset: int, then_down: bool = False, answer_to: bytes = b"") -> None:
        with self._lock:
            self._cuts.append((offset, then_down, answer_to))

    def up(self) -> None:
        """Listen (again, on the same port once it has one)."""
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        sock.settimeout(0.1)
        self.port = sock.getsockname()[1]
        with self._lock:
            self._listener = sock
        threading.Thread(target=self._accept, args=(sock,), name="proxy-accept", daemon=True).start()

    def down(self) -> None:
        """Refuse new connections and reset the live ones."""
        with self._lock:
            listener, self._listener = self._listener, None
            live, self._live = self._live, set()
        if listener is not None:
            listener.close()
        for sock in live:
            _reset(sock)

    @property
    def is_up(self) -> bool:
        return self._listener is not None

    def close(self) -> None:
        self._closing = True
        self.down()

    # --- forwarding ---------------------------------------------------------------------------
    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self.accepted += 1
                self._live.update((client, server))
            threading.Thread(target=self._pump, args=(client, server), name="proxy-pump", daemon=True).start()

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        answer = 0  # bytes the server sent since the client's last packet
        asked = b""  # the start of that packet
        client.settimeout(None)
        server.settimeout(None)
        sel = selectors.DefaultSelector()
        sel.register(client, selectors.EVENT_READ, server)
        sel.register(server, selectors.EVENT_READ, client)
        try:
            while True:
                for key, _ in sel.select(timeout=0.5):
                    src: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = src.recv(65536)
                    if not data:
                        return
                    if src is client:
                        if answer:
                            self.answers.append(answer)
                        answer, asked = 0, data[:4096]
                        server.sendall(data)
                        continue
                    cut = self._cut_point(answer, len(data), asked)
                    if cut is None:
                        answer += len(data)
                        client.sendall(data)
                        continue
                    offset, then_down, _ = cut
                    client.sendall(data[:offset - answer])
                    if then_down:
                        self.down()
                    return
                if self._closing:
                    return
        except OSError:
            return
        finally:
            sel.close()
            with self._lock:
                self._live.discard(client)
                self._live.discard(server)
            _reset(client)
            _reset(server)

    def _cut_point(self, answer: int, more: int, asked: bytes) -> tuple[int, bool, bytes] | None:
        """The planned cut this chunk crosses, taken from the plan (None: forward it whole)."""
        with self._lock:
            if self._cuts and answer < self._cuts[0][0] <= answer + more and self._cuts[0][2] in asked:
                self.cuts_done += 1
                return self._cuts.popleft()
        return None
