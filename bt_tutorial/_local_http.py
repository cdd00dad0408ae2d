"""A local HTTP server in a thread: what tests, benchmarks and tools serve their mirrors with.

The ``full`` profile's downloads are real code; they are checked offline against folders served
on 127.0.0.1 (a miniature ds003020 mirror, fakes of the ROI build's inputs, the built book).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder (``directory=``) without a log line per request."""

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serving(handler=None, directory=None):
    """Serve on 127.0.0.1 at a free port, in a daemon thread, until the ``with`` block ends.

    Parameters
    ----------
    handler : subclass of http.server.BaseHTTPRequestHandler, optional
        Default :class:`QuietHandler`.
    directory : path, optional
        The folder a :class:`~http.server.SimpleHTTPRequestHandler` (or subclass) serves.

    Yields
    ------
    url : str
        ``http://127.0.0.1:<port>``, without a trailing slash.
    """
    handler = handler or QuietHandler
    if directory is not None:
        handler = functools.partial(handler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
