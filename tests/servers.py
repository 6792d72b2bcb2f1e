"""Serving a WSGI app over real HTTP on 127.0.0.1 for the length of a test."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from werkzeug.serving import make_server


class LiveServer:
    """A threaded HTTP server; `url` is known before the app is, so settings can name it."""

    def __init__(self, app=None):
        self.app = app
        self._server = make_server("127.0.0.1", 0, self._dispatch, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def _dispatch(self, environ, start_response):
        return self.app(environ, start_response)

    def start(self) -> LiveServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@contextmanager
def serving(app) -> Iterator[str]:
    server = LiveServer(app).start()
    try:
        yield server.url
    finally:
        server.stop()
