"""A tiny local HTTP file server for the download tests (never the internet).

``FileServer(root)`` serves the files of ``root`` on 127.0.0.1 at an ephemeral port, in a daemon
thread, honours ``Range: bytes=<a>-[<b>]`` with ``206 Partial Content``, and can misbehave on purpose:

- ``drop_after=n``: the next ``drops`` responses send their full ``Content-Length`` header but only
  ``n`` body bytes, then close the connection (a dropped download);
- ``ignore_range=True``: answer every request with ``200`` and the whole file (a server without
  Range support).

Every request is recorded in ``server.requests`` (path, Range header, status, body bytes sent) before its
body is written, so a client that has its answer finds the request recorded. The
server is bounded: it stops itself after ``lifetime`` seconds, and the context manager stops it on exit.
"""
from __future__ import annotations

import http.server
import re
import threading
from pathlib import Path


class _Handler(http.server.BaseHTTPRequestHandler):
    timeout = 5  # socket timeout per connection: a stuck client cannot hold a thread for long

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        owner: FileServer = self.server.owner
        path = owner.root / self.path.lstrip("/").split("?")[0]
        range_header = self.headers.get("Range")
        if not path.is_file():
            owner._record(self.path, range_header, 404, 0)
            self.send_error(404)
            return
        data = path.read_bytes()
        start, end, status = 0, len(data) - 1, 200
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", range_header or "")
        if match and not owner.ignore_range:
            start = int(match.group(1))
            end = min(int(match.group(2)), end) if match.group(2) else end
            if start >= len(data):
                owner._record(self.path, range_header, 416, 0)
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = data[start:end + 1]
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.end_headers()
        limit = owner._take_drop()
        sent = body if limit is None else body[:limit]
        # recorded before the body goes out: a client that has read the whole body must find its request recorded
        # (recording after the write raced with the test's read of server.requests; one flaky failure seen)
        owner._record(self.path, range_header, status, len(sent))
        self.wfile.write(sent)
        self.wfile.flush()
        self.close_connection = True


class FileServer:
    """Serve ``root`` over HTTP on 127.0.0.1; use as a context manager.

    Parameters
    ----------
    root : path
        Folder whose files are served (``/<name>`` → ``root/<name>``).
    drop_after : int, optional
        Body bytes sent before the connection is cut, for the next ``drops`` responses.
    drops : int
        How many responses are cut short.
    ignore_range : bool
        Answer ``200`` with the whole file even when a Range is asked for.
    lifetime : float
        Seconds after which the server shuts itself down.
    """

    def __init__(self, root, drop_after: int | None = None, drops: int = 1, ignore_range: bool = False,
                 lifetime: float = 30.0):
        self.root = Path(root)
        self.drop_after = drop_after
        self.drops_left = drops if drop_after is not None else 0
        self.ignore_range = ignore_range
        self.lifetime = lifetime
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._httpd = None
        self._thread = None
        self._timer = None

    def __enter__(self) -> "FileServer":
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.owner = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        self._timer = threading.Timer(self.lifetime, self._httpd.shutdown)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def _take_drop(self) -> int | None:
        with self._lock:
            if self.drops_left > 0:
                self.drops_left -= 1
                return self.drop_after
            return None

    def _record(self, path: str, range_header: str | None, status: int, sent: int) -> None:
        with self._lock:
            self.requests.append({"path": path, "range": range_header, "status": status, "sent": sent})
