"""A small MJPEG-over-HTTP camera for tests: multipart/x-mixed-replace JPEG frames, like many IP cameras.

Threaded ``http.server`` on 127.0.0.1; it can stop sending while keeping connections open (a stalled
camera), cut every connection and stop listening (a camera gone), and come back on the same port.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import socketserver
import threading
import time

BOUNDARY = b"dualgaitframe"


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class MjpegServer:
    def __init__(self, jpegs: list[bytes], *, fps: float = 25.0, port: int = 0) -> None:
        self.jpegs = jpegs
        self.period_s = 1.0 / fps
        self.port = port
        self.paused = threading.Event()
        self.frames_served = 0
        self.connections = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._clients: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def start(self) -> MjpegServer:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *_args) -> None:
                pass

            def do_GET(self) -> None:
                if self.path != "/stream.mjpg":
                    self.send_error(404)
                    return
                with owner._lock:
                    owner._clients.add(self.connection)
                    owner.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY.decode()}")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                index = 0
                try:
                    while True:
                        if owner.paused.is_set():
                            time.sleep(0.02)
                            continue
                        jpeg = owner.jpegs[index % len(owner.jpegs)]
                        self.wfile.write(b"--" + BOUNDARY + b"\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                         + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
                        owner.frames_served += 1
                        index += 1
                        time.sleep(owner.period_s)
                except OSError:
                    pass  # client gone or connection cut
                finally:
                    with owner._lock:
                        owner._clients.discard(self.connection)

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def cut(self) -> None:
        """The camera is gone: stop listening and reset every open connection."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            clients = list(self._clients)
        for conn in clients:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def restart(self) -> None:
        """Back on the same port, streaming."""
        self.paused.clear()
        self.start()
