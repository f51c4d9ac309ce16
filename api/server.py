"""How the API is served: uvicorn with its h11 protocol, whose request head is bounded (uvicorn's default
httptools protocol buffers a head of any size), answering an oversized head with 431 naming the limit."""

from __future__ import annotations

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from api.limits import head_too_large


class BoundedHeadH11Protocol(H11Protocol):
    """uvicorn's h11 protocol; a head past ``h11_max_incomplete_event_size`` is answered 431 with the limit rather
    than uvicorn's 400 "Invalid HTTP request received." (its answer to every malformed request)."""

    def send_400_response(self, msg: str) -> None:
        limit = self.config.h11_max_incomplete_event_size
        if limit is None or len(self.conn.trailing_data[0]) <= limit:
            super().send_400_response(msg)
            return
        body = head_too_large(limit).encode()
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        response = h11.Response(status_code=431, headers=headers, reason=b"Request Header Fields Too Large")
        self.transport.write(self.conn.send(response) or b"")
        self.transport.write(self.conn.send(h11.Data(data=body)) or b"")
        self.transport.write(self.conn.send(h11.EndOfMessage()) or b"")
        self.transport.close()
