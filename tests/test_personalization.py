"""On-device personalization: a user's head learns from feedback, is bounded, saved atomically,
survives restarts and new bundles (by item id), is set aside when its file is bad, forgotten on
request, and never changes a new user's ranking."""

from __future__ import annotations

import json
import logging
import textwrap
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import DEVICE_PYTHON, run_without_tensorflow
from tiny_bundle import (
    TINY_HISTORY_LENGTH,
    TINY_ITEM_IDS,
    TINY_POPULARITY,
    TINY_TITLES,
    TINY_TOP_K,
    tiny_tflite_bytes,
)

from device_runtime.personalization import MAX_STATE_BYTES, PersonalizationConfig
from device_runtime.personalization.state_store import SET_ASIDE_SUFFIX
from device_runtime.recommender import Recommender
from device_runtime.server import RecommendationServer

pytest_plugins = ["conftest_bundle"]
ITEMS = TINY_ITEM_IDS[2:]
HISTORIES = [ITEMS[0:3], ITEMS[5:9], ITEMS[10:11], ITEMS[20:25]]


@pytest.fixture
def rec(tiny_bundle_dir, tmp_path) -> Recommender:
    return Recommender.load(tiny_bundle_dir, state_dir=tmp_path / "users")


def test_a_new_user_gets_exactly_the_shipped_ranking(rec):
    for history in HISTORIES:
        base = rec.recommend(history, k=10)
        assert rec.recommend(history, k=10, user="newcomer") == base


def test_dislike_demotes_the_item_and_like_promotes_its_neighbourhood(rec):
    history = ITEMS[0:3]
    base = rec.recommend(history, k=10).item_ids
    top = base[0]
    assert rec.feedback("alice", top, "dislike")
    after = rec.recommend(history, k=10, user="alice").item_ids
    assert top not in after[:3], (base, after)
    assert rec.recommend(history, k=10).item_ids == base  # nobody else is affected

    liked = base[-1]  # the 10th item
    for _ in range(5):
        rec.feedback("bob", liked, "like")
    neighbours, _ = rec._personal.neighbours(rec._serving).get(rec._serving.items.index_of(liked))
    near = [i for i in rec._serving.items.ids_at(neighbours.tolist()) if i not in history][:3]
    ranked = rec.recommend(history, k=10, user="bob").item_ids
    plain = rec.recommend(history, k=10).item_ids

    def rank(items, item):
        return items.index(item) if item in items else len(items)
    assert sum(rank(ranked, i) for i in near) < sum(rank(plain, i) for i in near)


def test_a_burst_of_events_moves_scores_by_a_bounded_amount(rec):
    config = rec._personal.config
    for _ in range(300):
        rec.feedback("burst", ITEMS[7], "like")
    head = rec._personal.head("burst", rec._serving.items)
    assert len(head.items) <= config.max_entries
    _, terms, _, _ = head._terms(config)
    assert terms.max() <= config.max_promotion and terms.min() >= -config.max_demotion
    for history in HISTORIES:
        base = set(rec.recommend(history, k=10).item_ids)
        assert len(base & set(rec.recommend(history, k=10, user="burst").item_ids)) >= 3


def test_state_is_saved_atomically_bounded_and_survives_a_restart(tiny_bundle_dir, tmp_path):
    folder = tmp_path / "users"
    first = Recommender.load(tiny_bundle_dir, state_dir=folder)
    rng = np.random.default_rng(0)
    kinds = ["play", "like", "skip", "dislike", 0.5]
    events = [(ITEMS[i], kinds[j]) for i, j in zip(rng.integers(0, len(ITEMS), 60), rng.integers(0, 5, 60), strict=True)]
    assert first.feedback_batch("carol", events) == 60
    files = list(folder.iterdir())
    assert len(files) == 1 and files[0].suffix == ".json" and "carol" not in files[0].name
    assert files[0].stat().st_size <= MAX_STATE_BYTES
    expected = [first.recommend(h, k=10, user="carol").item_ids for h in HISTORIES]
    second = Recommender.load(tiny_bundle_dir, state_dir=folder)
    assert [second.recommend(h, k=10, user="carol").item_ids for h in HISTORIES] == expected


def test_forget_deletes_every_trace(rec, tmp_path):
    rec.feedback("dave", ITEMS[3], "like")
    rec.feedback("dave", ITEMS[0], "dislike")
    folder = tmp_path / "users"
    path = rec._personal.store.path_for("dave")
    aside = path.with_name(path.name + SET_ASIDE_SUFFIX + "123")
    aside.write_text("{}")
    assert rec.forget("dave") == 2
    assert list(folder.iterdir()) == []
    assert rec.recommend(ITEMS[0:3], k=10, user="dave") == rec.recommend(ITEMS[0:3], k=10)


@pytest.mark.parametrize("content, reason", [
    (b"{not json", "JSON"),
    (json.dumps({"format": "something-else"}).encode(), "not an edge-rec user state"),
    (None, "another user"),
    (None, "incompatible head"),
    (b" " * (MAX_STATE_BYTES + 1), "larger than"),
])
def test_a_bad_state_file_is_set_aside_and_the_user_starts_fresh(rec, tmp_path, caplog, content, reason):
    rec.feedback("erin", ITEMS[2], "like")
    path = rec._personal.store.path_for("erin")
    if reason == "another user":
        rec.feedback("frank", ITEMS[4], "like")
        content = rec._personal.store.path_for("frank").read_bytes()
    elif reason == "incompatible head":
        body = json.loads(path.read_bytes())
        body["version"] = 99
        content = json.dumps(body).encode()
    path.write_bytes(content)
    fresh = Recommender.load(rec.bundle.source, state_dir=tmp_path / "users")
    with caplog.at_level(logging.WARNING, logger="device_runtime.personalization.state_store"):
        ranked = fresh.recommend(ITEMS[0:3], k=10, user="erin")
    assert ranked == fresh.recommend(ITEMS[0:3], k=10)
    assert reason in caplog.text and "set aside" in caplog.text
    assert not path.exists() and list(path.parent.glob(path.name + SET_ASIDE_SUFFIX + "*"))
    assert fresh.feedback("erin", ITEMS[2], "like")  # and learning goes on
    assert fresh.info()["personalization"]["state_files_set_aside"] == 1


def test_a_new_bundle_maps_the_state_by_item_id(rec, tmp_path):
    from converters.bundle_writer import write_bundle

    rec.feedback("gina", ITEMS[6], "like")
    rec.feedback("gina", ITEMS[1], "dislike")
    old = rec._personal.head("gina", rec._serving.items)
    old_values = dict(zip(rec._serving.items.ids_at(old.items.tolist()), old.values.tolist(), strict=True))
    dropped = {ITEMS[0], ITEMS[1]}
    new_ids = TINY_ITEM_IDS[:2] + ["9001", "9002"] + list(reversed(ITEMS[2:]))  # moved, dropped, added
    bundle = write_bundle(tmp_path / "new-bundle", tflite_bytes=tiny_tflite_bytes(seed=3),
                          vocabulary_ids=new_ids, titles=TINY_TITLES, history_length=TINY_HISTORY_LENGTH,
                          top_k=TINY_TOP_K, quantization={"variant": "float32"},
                          popularity_order=np.asarray(TINY_POPULARITY, dtype=np.int64),
                          metrics={}, build_info={"source": "test"})
    rec.reload(bundle)
    head = rec._personal.head("gina", rec._serving.items)
    new_values = dict(zip(rec._serving.items.ids_at(head.items.tolist()), head.values.tolist(), strict=True))
    assert new_values == {i: v for i, v in old_values.items() if i not in dropped}
    restarted = Recommender.load(bundle, state_dir=tmp_path / "users")  # from the file, by id
    again = restarted._personal.head("gina", restarted._serving.items)
    assert set(restarted._serving.items.ids_at(again.items.tolist())) == set(new_values)


def test_bad_feedback_is_refused_with_what_is_expected(rec, tiny_bundle_dir):
    with pytest.raises(ValueError, match="play, skip, like, dislike"):
        rec.feedback("h", ITEMS[0], "love")
    with pytest.raises(ValueError, match="out of range"):
        rec.feedback("h", ITEMS[0], 1e9)
    with pytest.raises(TypeError, match="user"):
        rec.feedback(["h"], ITEMS[0])
    assert rec.feedback("h", "not-in-the-catalog", "like") is False
    plain = Recommender.load(tiny_bundle_dir)
    with pytest.raises(ValueError, match="state_dir"):
        plain.feedback("h", ITEMS[0])
    with pytest.raises(ValueError, match="state_dir"):
        plain.recommend(ITEMS[:2], user="h")
    with pytest.raises(ValueError, match="strength"):
        PersonalizationConfig(strength=-1)


def _post(port: int, path: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="POST",
                                     data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.parametrize("personal", [True, False])
def test_the_server_takes_feedback_and_forgets(tiny_bundle_dir, tmp_path, personal):
    rec = Recommender.load(tiny_bundle_dir, state_dir=tmp_path / "users" if personal else None)
    server = RecommendationServer(rec, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        history = ITEMS[0:3]
        status, base = _post(port, "/recommend", {"history": history, "k": 5})
        assert status == 200
        status, answer = _post(port, "/feedback", {"user": "ivy", "item": base["items"][0]["item_id"],
                                                   "kind": "dislike"})
        if not personal:
            assert status == 409 and "--state-dir" in answer["error"]
            return
        assert status == 200 and answer == {"learned": True}
        status, mine = _post(port, "/recommend", {"history": history, "k": 5, "user": "ivy"})
        assert status == 200 and mine["items"][0]["item_id"] != base["items"][0]["item_id"]
        assert _post(port, "/feedback", {"user": "ivy", "item": "1001", "kind": "adore"})[0] == 400
        assert _post(port, "/feedback", {"user": "", "item": "1001"})[0] == 400
        status, gone = _post(port, "/forget", {"user": "ivy"})
        assert status == 200 and gone["files_removed"] == 1
        assert not list((tmp_path / "users").iterdir())
    finally:
        server.shutdown()
        server.server_close()


def test_the_same_events_give_the_same_ranking_on_the_device_interpreter(tiny_bundle_dir, tmp_path):
    """Feedback and a personalized recommend in a child without TensorFlow (Python 3.9 and
    tflite-runtime 2.14 under `make test`) rank as this interpreter does."""
    events = [(ITEMS[i], kind) for i, kind in ((3, "like"), (8, "play"), (1, "dislike"), (12, "skip"), (20, 2.5))]
    rec = Recommender.load(tiny_bundle_dir, state_dir=tmp_path / "here")
    rec.feedback_batch("jo", events)
    here = [rec.recommend(h, k=10, user="jo").item_ids for h in HISTORIES]
    script = textwrap.dedent(f"""
        import json, sys
        from device_runtime.recommender import Recommender
        rec = Recommender.load({str(tiny_bundle_dir)!r}, state_dir={str(tmp_path / "there")!r})
        rec.feedback_batch("jo", {events!r})
        print(json.dumps({{"backend": rec.backend,
                          "ranked": [rec.recommend(h, k=10, user="jo").item_ids for h in {HISTORIES!r}]}}))
    """)
    child = run_without_tensorflow(python=DEVICE_PYTHON, args=["-c", script])
    assert child.returncode == 0, child.stderr
    there = json.loads(child.stdout)["ranked"]
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(here, there, strict=True)])
    assert overlap >= 0.95, (here, there)
    assert Path(tmp_path / "there").is_dir()
