"""Tests of synthgate.cache: round trips, invalidation, corrupt entries and concurrent writers."""

from __future__ import annotations

import logging
import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from synthgate.cache import FeatureCache, cache_namespace, default_cache_dir

KEY = "ab" + "0" * 62
NAMESPACE = "pixels-v1-000000000000"


def test_array_round_trip(tmp_path):
    cache = FeatureCache(tmp_path)
    array = np.arange(12, dtype=np.float32).reshape(3, 4)

    cache.save(NAMESPACE, KEY, array)
    loaded = cache.load(NAMESPACE, KEY)

    assert loaded.dtype == np.float32
    assert np.array_equal(loaded, array)
    assert (tmp_path / NAMESPACE / "ab" / f"{KEY}.npy").is_file()


def test_json_round_trip(tmp_path):
    cache = FeatureCache(tmp_path)
    record = {"status": "ok", "info": {"width": 256, "resized": False}}

    cache.save_json(NAMESPACE, KEY, record)

    assert cache.load_json(NAMESPACE, KEY) == record
    assert (tmp_path / NAMESPACE / "ab" / f"{KEY}.json").is_file()


def test_missing_entry_is_miss(tmp_path):
    cache = FeatureCache(tmp_path)

    assert cache.load(NAMESPACE, KEY) is None
    assert cache.load_json(NAMESPACE, KEY) is None


def test_batch_round_trip(tmp_path):
    cache = FeatureCache(tmp_path)
    rows = {f"{i:02d}key": np.full(5, float(i)) for i in range(20)}

    cache.save_many(NAMESPACE, rows)
    loaded = cache.load_many(NAMESPACE, [*rows, "99absent"])

    assert sorted(loaded) == sorted(rows)
    assert all(np.array_equal(loaded[key], rows[key]) for key in rows)


def test_json_batch_skips_missing(tmp_path):
    cache = FeatureCache(tmp_path)
    cache.save_json(NAMESPACE, "k1", {"a": 1})

    assert cache.load_json_many(NAMESPACE, ["k1", "k2"]) == {"k1": {"a": 1}}


def test_disabled_cache_never_stores(tmp_path):
    cache = FeatureCache(None)

    cache.save(NAMESPACE, KEY, np.ones(3))
    cache.save_json(NAMESPACE, KEY, {"a": 1})

    assert cache.enabled is False
    assert cache.load(NAMESPACE, KEY) is None
    assert cache.load_json(NAMESPACE, KEY) is None
    assert cache.load_many(NAMESPACE, [KEY]) == {}


def test_save_overwrites(tmp_path):
    cache = FeatureCache(tmp_path)

    cache.save(NAMESPACE, KEY, np.zeros(3))
    cache.save(NAMESPACE, KEY, np.ones(3))

    assert np.array_equal(cache.load(NAMESPACE, KEY), np.ones(3))


def test_object_array_rejected(tmp_path):
    with pytest.raises(ValueError, match="array must have a numeric dtype; got dtype object"):
        FeatureCache(tmp_path).save(NAMESPACE, KEY, np.array([{"a": 1}], dtype=object))


@pytest.mark.parametrize("name", ["../escape", "a/b", "", ".hidden", "tab\t", "x" * 201, "..", "ünicode"])
def test_invalid_names_rejected(tmp_path, name):
    cache = FeatureCache(tmp_path)

    with pytest.raises(ValueError, match=r"namespace must be 1-200 characters from \[A-Za-z0-9._-\]"):
        cache.save(name, KEY, np.ones(2))
    with pytest.raises(ValueError, match=r"key must be 1-200 characters from \[A-Za-z0-9._-\]"):
        cache.load(NAMESPACE, name)


def test_invalid_names_rejected_when_disabled():
    with pytest.raises(ValueError, match="key must be"):
        FeatureCache(None).load(NAMESPACE, "../x")


# Namespaces.


def test_namespace_format():
    namespace = cache_namespace("pixels", 1, {"size": (256, 256)})

    assert namespace.startswith("pixels-v1-")
    assert len(namespace) == len("pixels-v1-") + 12


def test_namespace_changes_with_version_and_params():
    base = cache_namespace("pixels", 1, {"size": [256, 256], "bins": 64})

    assert cache_namespace("pixels", 2, {"size": [256, 256], "bins": 64}) != base
    assert cache_namespace("pixels", 1, {"size": [256, 256], "bins": 32}) != base
    assert cache_namespace("pixels", 1, {"size": [256, 256]}) != base
    assert cache_namespace("texture", 1, {"size": [256, 256], "bins": 64}) != base


def test_namespace_ignores_key_order_and_tuples():
    first = cache_namespace("pixels", 1, {"size": (256, 256), "bins": 64})
    second = cache_namespace("pixels", 1, {"bins": 64, "size": [256, 256]})

    assert first == second


@pytest.mark.parametrize(
    ("name", "version", "params", "message"),
    [
        ("pix/els", 1, {}, "name must be"),
        ("pixels", -1, {}, "version must be an integer >= 0"),
        ("pixels", "1", {}, "version must be an integer >= 0"),
        ("pixels", 1, {"x": float("nan")}, "params must be JSON-serialisable with finite numbers"),
        ("pixels", 1, {"x": object()}, "params must be JSON-serialisable"),
    ],
)
def test_namespace_validation(name, version, params, message):
    with pytest.raises(ValueError, match=message):
        cache_namespace(name, version, params)


def test_namespace_change_invalidates(tmp_path):
    cache = FeatureCache(tmp_path)
    old = cache_namespace("pixels", 1, {"bins": 64})
    new = cache_namespace("pixels", 1, {"bins": 32})

    cache.save(old, KEY, np.ones(4))

    assert cache.load(new, KEY) is None
    assert cache.load(old, KEY) is not None


# Corrupt entries.


@pytest.mark.parametrize("content", [b"", b"garbage, not an npy file", b"\x93NUMPY\x01\x00v\x00{'descr': '<f8'"])
def test_corrupt_array_is_miss_then_overwritten(tmp_path, caplog, content):
    cache = FeatureCache(tmp_path)
    path = cache.path_for(NAMESPACE, KEY)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)

    with caplog.at_level(logging.WARNING, logger="synthgate.cache"):
        assert cache.load(NAMESPACE, KEY) is None

    assert "ignoring unreadable cache entry" in caplog.text
    assert str(path) in caplog.text

    cache.save(NAMESPACE, KEY, np.ones(3))

    assert np.array_equal(cache.load(NAMESPACE, KEY), np.ones(3))


def test_truncated_array_is_miss(tmp_path, caplog):
    cache = FeatureCache(tmp_path)
    cache.save(NAMESPACE, KEY, np.arange(100.0))
    path = cache.path_for(NAMESPACE, KEY)
    path.write_bytes(path.read_bytes()[:-40])

    with caplog.at_level(logging.WARNING, logger="synthgate.cache"):
        assert cache.load(NAMESPACE, KEY) is None

    assert "ignoring unreadable cache entry" in caplog.text


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_corrupt_json_is_miss(tmp_path, caplog, content):
    cache = FeatureCache(tmp_path)
    path = cache.path_for(NAMESPACE, KEY, ".json")
    path.parent.mkdir(parents=True)
    path.write_bytes(content)

    with caplog.at_level(logging.WARNING, logger="synthgate.cache"):
        assert cache.load_json(NAMESPACE, KEY) is None

    assert "ignoring unreadable cache entry" in caplog.text


def test_object_array_on_disk_is_miss(tmp_path):
    cache = FeatureCache(tmp_path)
    path = cache.path_for(NAMESPACE, KEY)
    path.parent.mkdir(parents=True)
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)

    assert cache.load(NAMESPACE, KEY) is None


# Concurrency.


def _write_repeatedly(root: str, value: float, rounds: int) -> None:
    cache = FeatureCache(root)
    for _ in range(rounds):
        for index in range(10):
            cache.save(NAMESPACE, f"key{index:02d}", np.full(20_000, value))
            cache.save_json(NAMESPACE, f"key{index:02d}", {"value": value, "padding": "x" * 20_000})


def test_concurrent_writers_leave_no_corrupt_entry(tmp_path, caplog):
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("needs the fork start method to run writers without installing synthgate")
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_write_repeatedly, args=(str(tmp_path), value, 15)) for value in (1.0, 2.0)]
    cache = FeatureCache(tmp_path)
    seen = set()

    with caplog.at_level(logging.WARNING, logger="synthgate.cache"):
        for writer in writers:
            writer.start()
        while any(writer.is_alive() for writer in writers):
            for index in range(10):
                array = cache.load(NAMESPACE, f"key{index:02d}")
                if array is not None:
                    assert array.shape == (20_000,)
                    assert len(np.unique(array)) == 1
                    seen.add(float(array[0]))
                record = cache.load_json(NAMESPACE, f"key{index:02d}")
                if record is not None:
                    assert record["value"] in (1.0, 2.0)
        for writer in writers:
            writer.join()

    assert [writer.exitcode for writer in writers] == [0, 0]
    assert seen, "the reader never saw an entry while the writers ran"
    assert seen <= {1.0, 2.0}
    assert "ignoring unreadable cache entry" not in caplog.text
    for index in range(10):
        assert float(np.unique(cache.load(NAMESPACE, f"key{index:02d}"))[0]) in (1.0, 2.0)
    leftovers = [path.name for path in Path(tmp_path).rglob(".tmp-*")]
    assert leftovers == []


# Default location.


def test_default_dir_from_synthgate_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("SYNTHGATE_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

    assert default_cache_dir() == tmp_path / "explicit"


def test_default_dir_from_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("SYNTHGATE_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

    assert default_cache_dir() == tmp_path / "xdg" / "synthgate"


def test_default_dir_in_home(monkeypatch, tmp_path):
    monkeypatch.setenv("SYNTHGATE_CACHE_DIR", "")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))

    assert default_cache_dir() == tmp_path / ".cache" / "synthgate"
