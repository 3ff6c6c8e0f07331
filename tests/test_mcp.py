"""MCP: the real app (``RAG_MCP=true``) serves /search and /ask as MCP tools; the real ``mcp`` client library lists
and calls them, over the streamable HTTP transport, through the login (RAG_AUTH)."""

from __future__ import annotations

import ast
import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from apprun import start_app, stop
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from openai_server import FakeOpenAI, Reply

from rag.mcp_auth import McpLogin

pytestmark = pytest.mark.slow


async def session_calls(url: str, auth: tuple[str, str] | None, calls: list[tuple[str, dict[str, Any]]]) -> tuple:
    """(tools listed, results of ``calls``) for one MCP session."""
    async with httpx.AsyncClient(auth=httpx.BasicAuth(*auth) if auth else None, timeout=120) as http:
        async with streamable_http_client(url, http_client=http) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = (await session.list_tools()).tools
                results = [await session.call_tool(name, args) for name, args in calls]
    return tools, results


def test_an_mcp_client_lists_and_calls_search_and_ask_behind_the_login(tiny_models, faq_dir: Path,
                                                                       tmp_path: Path) -> None:
    answer = ["Milvus keeps data ", "in object storage [1]."]
    with FakeOpenAI(Reply(chunks=answer)) as llm:
        url, proc = start_app(tmp_path, tiny_models, faq_dir, llm.url, "sk-mcp",
                              env={"RAG_MCP": "true", "RAG_AUTH": "alice:pw-a,bob:pw-b", "RAG_ADMINS": "alice"},
                              auth=("alice", "pw-a"))
        try:
            mcp_url = f"{url}gradio_api/mcp/"
            calls = [("search", {"question": "Where does Milvus store data?", "candidates": 5, "top_k": 2}),
                     ("ask", {"question": "Where does Milvus store data?"}),
                     ("upload", {"files": ["/etc/passwd"]}),
                     ("documents", {}),
                     ("search", {"question": "Where does Milvus store data?", "candidates": 5, "top_k": 2,
                                 "sources": ["milvus_faq/performance_faq.md"]})]
            tools, (found, answered, upload, listed, scoped) = asyncio.run(
                session_calls(mcp_url, ("bob", "pw-b"), calls))

            # bob is no admin: he may search, ask and list, and no tool can change the index
            by_name = {t.name: t for t in tools}
            assert set(by_name) == {"search", "ask", "documents", "compare"}
            assert "documents tool" in json.dumps(by_name["search"].inputSchema)  # how to find the names
            names = [d["source"] for d in ast.literal_eval(listed.content[0].text)["documents"]]
            assert "milvus_faq/performance_faq.md" in names and len(names) == 5
            in_one = ast.literal_eval(scoped.content[0].text)["candidates"]
            assert in_one and {h["document"] for h in in_one} == {"milvus_faq/performance_faq.md"}
            assert "question" in by_name["search"].inputSchema["properties"]
            assert "reranker" in by_name["search"].description and "Milvus FAQ" in by_name["ask"].description
            assert "self-contained" in json.dumps(by_name["ask"].inputSchema)  # the argument's description
            result = ast.literal_eval(found.content[0].text)  # Gradio's MCP server sends str() of the dict
            assert len(result["reranked"]) == 2 and len(result["candidates"]) == 5
            assert all(h["source"].endswith(".md") for h in result["reranked"])
            reply = ast.literal_eval(answered.content[0].text)
            assert reply["answer"] == "".join(answer) and reply["generated"] is True and reply["sources"]
            assert upload.isError

            for wrong in (None, ("bob", "wrong"), ("mallory", "pw-b")):  # no login, a wrong password, no such user
                with pytest.raises(ExceptionGroup) as failed:
                    asyncio.run(session_calls(mcp_url, wrong, []))
                assert failed.group_contains(httpx.HTTPStatusError, match="401 Unauthorized"), repr(failed.value)
            plain = httpx.post(mcp_url, json={}, headers={"Accept": "application/json, text/event-stream"})
            assert plain.status_code == 401 and "RAG_AUTH" in plain.text
        finally:
            stop(proc)


def test_basic_credentials_are_checked_against_every_login() -> None:
    login = McpLogin(None, [("alice", "pw:a"), ("bob", "b")])

    def header(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    assert login.user(header("alice", "pw:a")) == "alice" and login.user(header("bob", "b")) == "bob"
    for bad in (header("alice", "b"), header("bob", "pw:a"), header("carol", "x"), "Bearer abc", "Basic !!!", ""):
        assert login.user(bad) is None, bad
