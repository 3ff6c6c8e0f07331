"""Access: the optional login (RAG_AUTH), admin-only changes to the index (RAG_ADMINS), Hugging Face OAuth users."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest
from apprun import sign_in, start_app, stop
from openai_server import FakeOpenAI

from app import access_note, current_user, may_change_index
from rag.errors import SettingsError
from rag.settings import ROOT, load_settings

SHOTS = ROOT / "screenshots"

LOGINS = "alice:pw-alice,bob:pw-bob"


def settings(**env: str):
    return load_settings(env_file=None, environ=env)


def test_logins_and_admins_are_read_and_checked() -> None:
    s = settings(RAG_AUTH=" alice:pw:with:colons , bob:x ", RAG_ADMINS="alice, carol")
    assert s.logins() == [("alice", "pw:with:colons"), ("bob", "x")]
    assert s.admin_names() == {"alice", "carol"}
    assert "pw" not in repr(s)
    assert settings().logins() == [] and settings().admin_names() == frozenset()
    for bad in ("alice", "alice:", ":pw", "alice:pw,bob"):
        with pytest.raises(SettingsError, match="RAG_AUTH must be user:password"):
            settings(RAG_AUTH=bad)


def test_hugging_face_oauth_is_on_in_a_space_that_asks_for_it() -> None:
    assert not settings().hf_oauth and not settings(SPACE_ID="me/app").hf_oauth
    assert settings(SPACE_ID="me/app", OAUTH_CLIENT_ID="abc").hf_oauth
    assert not settings(SPACE_ID="me/app", OAUTH_CLIENT_ID="abc", RAG_HF_OAUTH="false").hf_oauth
    assert settings(SPACE_ID="me/app", OAUTH_CLIENT_ID="abc", RAG_HF_OAUTH="true").hf_oauth
    with pytest.raises(SettingsError, match="only in a Hugging Face Space"):  # Gradio's local mock needs the Hub
        settings(RAG_HF_OAUTH="true")


def test_the_sign_in_button_shows_only_with_hugging_face_oauth(make_settings, monkeypatch) -> None:
    from app import build_app
    from rag.pipeline import Pipeline

    # What a Space with hf_oauth: true provides. Outside one, Gradio mocks the login with the developer's own Hub
    # account, which needs the Hub. gradio.oauth read the OAUTH_* variables when it was imported.
    space = {"SYSTEM": "spaces", "SPACE_ID": "me/app", "OAUTH_CLIENT_ID": "id", "OAUTH_CLIENT_SECRET": "secret",
             "OAUTH_SCOPES": "openid profile", "OPENID_PROVIDER_URL": "https://huggingface.co"}
    for name, value in space.items():
        monkeypatch.setenv(name, value)
        monkeypatch.setattr(gr.oauth, name, value, raising=False)
    for oauth in (False, True):
        demo = build_app(Pipeline(make_settings(hf_oauth=oauth)))
        assert any(isinstance(b, gr.LoginButton) for b in demo.blocks.values()) == oauth


def test_who_may_change_the_index() -> None:
    open_app, locked = settings(), settings(RAG_ADMINS="alice")
    login = SimpleNamespace(username="alice")
    hf_user = gr.OAuthProfile({"preferred_username": "bob", "name": "Bob", "profile": "", "picture": ""})
    assert current_user(login) == "alice" and current_user(SimpleNamespace(username=None), hf_user) == "bob"
    assert current_user(None) is None
    assert may_change_index(open_app, None) and may_change_index(open_app, "bob")
    assert may_change_index(locked, "alice")
    assert not may_change_index(locked, "bob") and not may_change_index(locked, None)
    assert "only an admin" in access_note(locked, "bob") and "Nobody is signed in" in access_note(locked, None)
    assert access_note(open_app, None) == "" and "alice" in access_note(locked, "alice")


@pytest.mark.slow
def test_login_and_admin_only_changes_in_the_browser(browser, tiny_models, faq_dir: Path, tmp_path: Path) -> None:
    from gradio_client import Client

    with FakeOpenAI() as llm:
        url, proc = start_app(tmp_path, tiny_models, faq_dir, llm.url, "sk-x",
                              env={"RAG_AUTH": LOGINS, "RAG_ADMINS": "alice", "RAG_MAX_UPLOAD_MB": "0.05"},
                              auth=("bob", "pw-bob"))
        try:
            with pytest.raises(Exception):  # noqa: B017 - any refusal; the point is that nothing is answered
                Client(url, verbose=False).predict("Where does Milvus store data?", 10, 3, api_name="/search")
            for path in ("config", "gradio_api/info"):  # nothing of the app shows before the login
                with pytest.raises(urllib.error.HTTPError) as refused:
                    urllib.request.urlopen(url + path, timeout=30)
                assert refused.value.code == 401
            found = Client(url, verbose=False, auth=("bob", "pw-bob")).predict("Where does Milvus store data?", 10,
                                                                               3, api_name="/search")
            assert len(found["reranked"]) == 3

            bob = signed_in(browser, url, "bob", "pw-bob")
            assert "only an admin" in bob.locator("#access").inner_text()
            for button in ("#add", "#clear", "#rebuild", "#remove"):
                assert bob.locator(button).is_disabled()
            # A visitor who enables the button in the page is still refused by the server.
            bob.evaluate("document.querySelector('#clear').removeAttribute('disabled')")
            bob.locator("#clear").click(force=True)
            bob.get_by_text("Only an admin (RAG_ADMINS) may change the index").wait_for(timeout=30000)
            assert not bob.locator("#stats").inner_text().startswith("0 chunks")
            refusals = "document.body.innerText.split('Only an admin (RAG_ADMINS)').length - 1"
            before = bob.evaluate(refusals)
            bob.evaluate("document.querySelector('#remove').removeAttribute('disabled')")
            bob.locator("#remove").click(force=True)
            bob.wait_for_function(f"{refusals} > {before}", timeout=30000)
            SHOTS.mkdir(exist_ok=True)
            bob.screenshot(path=str(SHOTS / "documents-locked.png"), full_page=True)

            alice = signed_in(browser, url, "alice", "pw-alice")
            assert "Signed in as alice" in alice.locator("#access").inner_text()
            big = tmp_path / "big.md"
            big.write_text("# Big\n\n" + "word " * 20_000)  # 100 KB, over the 50 KB upload limit
            alice.locator("input[type=file]").set_input_files(str(big))
            alice.get_by_text("exceed the maximum allowed size").wait_for(timeout=30000)
            small = tmp_path / "alices-note.md"
            small.write_text("# Note\n\nAlice's own words.")
            alice.locator("input[type=file]").first.set_input_files(str(small))
            alice.wait_for_timeout(1000)
            alice.locator("#add").click()
            alice.locator("#report").get_by_text("added: alices-note.md").wait_for(timeout=60000)
            row = alice.locator("#documents tr", has_text="alices-note.md").inner_text()
            assert row.rstrip().endswith("alice"), row  # who added it
            alice.locator("#clear").click()
            alice.locator("#report").get_by_text("The index is empty").wait_for(timeout=30000)
            assert alice.locator("#stats").inner_text().startswith("0 chunks")
        finally:
            stop(proc)


def signed_in(browser, url: str, user: str, password: str):
    page = sign_in(browser, url, user, password)
    page.get_by_role("tab", name="Documents").click()
    page.locator("#stats").get_by_text("chunks in collection").wait_for(timeout=30000)
    page.locator("#access").get_by_text(user).wait_for(timeout=30000)
    return page
