"""Answers from a real loopback server speaking OpenAI's protocol, through the real ``openai`` client."""

from __future__ import annotations

import time

import pytest
from openai_server import FakeOpenAI, Reply

from rag.generation import Generator, Turn
from rag.settings import load_settings
from rag.types import Hit

KEY = "sk-test-PLANTED-KEY-1234567890"
HITS = [
    Hit("a", "Milvus deals with two types of data. Inserted data is stored in MinIO.", "product_faq.md",
        "Where does Milvus store data?", 3, 0.5, 1, 0.9),
    Hit("b", "etcd stores the metadata.", "operational_faq.md", "Metadata", 1, 0.6, 2, 0.7),
]


@pytest.fixture
def server():
    with FakeOpenAI() as s:
        yield s


def make(server: FakeOpenAI | None, **overrides) -> Generator:
    values = {"openai_api_key": KEY, "llm_retries": 2, "llm_timeout_s": 5}
    if server is not None:
        values["openai_base_url"] = server.url
    values.update(overrides)
    return Generator(load_settings(env_file=None, environ={}, **values), sleep=lambda s: None)


def test_streams_a_cited_answer(server: FakeOpenAI) -> None:
    gen = make(server)
    answer = gen.stream("Where does Milvus store data?", HITS)
    deltas = list(answer)
    assert deltas == ["Milvus stores ", "inserted data in MinIO [1]."]
    assert answer.text == "Milvus stores inserted data in MinIO [1]." and answer.error is None and answer.generated
    assert answer.first_token_s is not None and answer.generate_s >= answer.first_token_s
    (req,) = server.requests
    body = req["body"]
    assert req["path"] == "/v1/chat/completions" and body["stream"] is True and body["model"] == "gpt-4o"
    assert req["headers"]["authorization"] == f"Bearer {KEY}"
    system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
    assert "[1]" in system and "language of the question" in system and "do not contain the answer" in system
    assert "[1] Where does Milvus store data? (product_faq.md)\nMilvus deals with two types" in user
    assert "[2] Metadata (operational_faq.md)" in user and "Where does Milvus store data?" in user


def test_model_temperature_and_max_tokens_are_settings(server: FakeOpenAI) -> None:
    list(make(server, llm_model="qwen-plus", temperature=0.7, max_tokens=77).stream("q", HITS))
    body = server.requests[0]["body"]
    assert (body["model"], body["temperature"], body["max_tokens"]) == ("qwen-plus", 0.7, 77)


def test_401_is_one_clear_line_without_the_key(server: FakeOpenAI) -> None:
    server.enqueue(Reply(status=401, error=f"Incorrect API key provided: {KEY}"))
    answer = make(server).stream("q", HITS).consume()
    assert "401" in answer.error and "OPENAI_API_KEY" in answer.error and KEY not in answer.text
    assert answer.partial == "" and len(server.requests) == 1


def test_404_names_the_model_setting(server: FakeOpenAI) -> None:
    server.enqueue(Reply(status=404, error="model not found"))
    answer = make(server, llm_model="gpt-9").stream("q", HITS).consume()
    assert "gpt-9" in answer.error and "RAG_LLM_MODEL" in answer.error


def test_429_is_retried_with_backoff_then_succeeds(server: FakeOpenAI) -> None:
    server.enqueue(Reply(status=429, headers={"Retry-After": "0"}), Reply(status=429))
    waits: list[float] = []
    gen = make(server)
    gen._sleep = waits.append
    answer = gen.stream("q", HITS).consume()
    assert answer.error is None and answer.text.endswith("[1].") and len(server.requests) == 3
    assert waits == [0.0, 1.0]  # the server's Retry-After, then exponential backoff


def test_429_retries_are_bounded(server: FakeOpenAI) -> None:
    server.enqueue(*[Reply(status=429)] * 5)
    answer = make(server, llm_retries=2).stream("q", HITS).consume()
    assert "429" in answer.error and len(server.requests) == 3


def test_500_is_not_retried_and_is_clear(server: FakeOpenAI) -> None:
    server.enqueue(Reply(status=500))
    answer = make(server).stream("q", HITS).consume()
    assert "failed (500)" in answer.error and len(server.requests) == 1


def test_cut_stream_keeps_the_text_and_says_so(server: FakeOpenAI) -> None:
    server.enqueue(Reply(chunks=["Milvus keeps ", "its data ", "in"], cut_after=2))
    answer = make(server).stream("q", HITS).consume()
    assert answer.partial == "Milvus keeps its data "
    assert answer.text.startswith("Milvus keeps its data \n\n⚠ ") and "cut off" in answer.error


def test_an_answer_cut_at_the_length_cap_says_so(server: FakeOpenAI) -> None:
    server.enqueue(Reply(chunks=["Milvus stores ", "inserted"], finish="length"))
    answer = make(server, max_tokens=40).stream("q", HITS).consume()
    assert answer.text == ("Milvus stores inserted\n\n⚠ The answer reached the length cap of 40 tokens "
                           "(RAG_MAX_TOKENS) and stops here.")
    assert answer.finish_reason == "length" and answer.error is None  # the text stands; it is only not whole
    whole = make(server).stream("q", HITS).consume()
    assert whole.finish_reason == "stop" and "⚠" not in whole.text


def test_a_fastapi_style_error_body_is_read(server: FakeOpenAI) -> None:
    server.enqueue(Reply(status=400, detail=True, error="Server is pinned to 'a'; requested 'b'."))
    answer = make(server).stream("q", HITS).consume()
    assert answer.error.endswith("refused the request (400): Server is pinned to 'a'; requested 'b'.")


def test_slow_first_token_is_waited_for_and_timed(server: FakeOpenAI) -> None:
    server.enqueue(Reply(first_delay=0.6))
    answer = make(server).stream("q", HITS)
    start = time.perf_counter()
    list(answer)
    assert answer.error is None and answer.first_token_s >= 0.5 and time.perf_counter() - start >= 0.5


def test_timeout_is_clear(server: FakeOpenAI) -> None:
    server.enqueue(Reply(first_delay=3))
    answer = make(server, llm_timeout_s=0.5).stream("q", HITS).consume()
    assert "RAG_LLM_TIMEOUT_S" in answer.error


def test_unreachable_server_names_the_base_url() -> None:
    answer = make(None, openai_base_url="http://127.0.0.1:1/v1").stream("q", HITS).consume()
    assert "OPENAI_BASE_URL" in answer.error


def test_without_a_key_the_passages_are_the_answer() -> None:
    answer = make(None, openai_api_key="").stream("q", HITS).consume()
    assert not answer.generated and answer.error is None
    assert answer.text.startswith("Generation is off: set OPENAI_API_KEY")
    assert "[1] Where does Milvus store data? (product_faq.md)\nMilvus deals" in answer.text
    assert "[2] Metadata (operational_faq.md)" in answer.text


def test_follow_up_is_condensed_and_history_is_bounded(server: FakeOpenAI) -> None:
    history = [Turn(f"question {i}", f"answer {i}") for i in range(5)]
    server.enqueue(Reply(chunks=["How is data flushed in Milvus?"]))
    gen = make(server, history_turns=2)
    assert gen.standalone_question("and how is it flushed?", history) == "How is data flushed in Milvus?"
    condense = server.requests[0]["body"]
    assert condense["stream"] is False and "question 4" in condense["messages"][0]["content"]
    assert "question 2" not in condense["messages"][0]["content"]
    list(gen.stream("and how is it flushed?", HITS, history))
    messages = server.requests[1]["body"]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert messages[1]["content"] == "question 3" and messages[4]["content"] == "answer 4"


def test_follow_up_without_an_llm_joins_the_questions() -> None:
    gen = make(None, openai_api_key="")
    assert gen.standalone_question("and how is it flushed?", [Turn("Where does Milvus store data?", "…")]) == (
        "Where does Milvus store data? and how is it flushed?"
    )
