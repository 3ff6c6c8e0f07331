"""The login (RAG_AUTH) in front of Gradio's MCP endpoint, ``/gradio_api/mcp``, which Gradio leaves open.

MCP clients cannot fill in a login page, so they send HTTP Basic credentials (``Authorization: Basic …``, a header
every MCP client can be configured with). ``McpLogin`` checks them against RAG_AUTH and answers 401 without them.
With MCP on, the app's ``/search`` and ``/ask`` run off Gradio's queue, so Gradio calls them in-process for an MCP
client that got past this check (its queued path would call back over HTTP without the login, and fail).

The tools themselves are the app's public API endpoints (``/search`` and ``/ask``): uploading, clearing and
rebuilding are private endpoints, so no MCP client, admin or not, can change the index.

Leaves out: the tools (``app.py``) and Hugging Face OAuth (without RAG_AUTH the MCP endpoint is as open as the API).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Sequence
from typing import Any

MCP_PATH = "/gradio_api/mcp"


class McpLogin:
    """ASGI middleware: requests under ``MCP_PATH`` need the Basic credentials of one of ``logins``."""

    def __init__(self, app: Any, logins: Sequence[tuple[str, str]]) -> None:
        self.app, self.logins = app, list(logins)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self.logins or not scope["path"].startswith(MCP_PATH):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        user = self.user(headers.get(b"authorization", b"").decode("latin-1"))
        if user is None:
            body = json.dumps({"error": "This app has a login (RAG_AUTH): send it as HTTP Basic credentials, "
                                        "Authorization: Basic base64(user:password)."}).encode()
            await send({"type": "http.response.start", "status": 401, "headers": [
                (b"content-type", b"application/json"), (b"www-authenticate", b'Basic realm="Ask your documents"')]})
            await send({"type": "http.response.body", "body": body})
            return None
        return await self.app(scope, receive, send)

    def user(self, header: str) -> str | None:
        """The RAG_AUTH user whose Basic credentials ``header`` holds, or None."""
        kind, _, encoded = header.partition(" ")
        if kind.lower() != "basic":
            return None
        try:
            name, sep, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        found = None
        for login, secret in self.logins:  # compare with every login, in constant time each
            if hmac.compare_digest(login.encode(), name.encode()) & hmac.compare_digest(secret.encode(),
                                                                                      password.encode()):
                found = login
        return found if sep else None
