"""The served catalog: ids <-> indices through a dict (small catalogs) or sorted hashes (large)."""

from __future__ import annotations

import pytest

from device_runtime import item_catalog
from device_runtime.bundle import OOV_ID, PAD_ID, BundleError, format_items_tsv, parse_items_tsv

IDS = [PAD_ID, OOV_ID, "show-1", "show-2", "Ünïcode", "42"]
TITLES = ["", "", "One", "", "Two words", "The answer"]


@pytest.fixture(params=["dict", "hashes"])
def catalog(request, monkeypatch):
    if request.param == "hashes":
        monkeypatch.setattr(item_catalog, "DICT_INDEX_MAX_ITEMS", 0)
    return parse_items_tsv(format_items_tsv(IDS, TITLES).encode(), len(IDS))


def test_ids_map_to_their_indices_and_back(catalog):
    assert catalog.lookup(["show-2", "Ünïcode", "42", "show-1"]) == [3, 4, 5, 2]
    assert catalog.ids_at([2, 5]) == ["show-1", "42"]
    assert catalog.titles_at([2, 3, 4]) == ["One", "", "Two words"]
    assert tuple(catalog.item_ids) == tuple(IDS) and catalog.item_ids[-1] == "42"
    assert catalog.titles[1:3] == ("", "One")


def test_unknown_reserved_and_non_str_keys_are_none(catalog):
    assert catalog.lookup(["nope", PAD_ID, OOV_ID, 42, b"show-1", None]) == [None] * 6
    assert catalog.index_of("nope", 1) == 1
    assert catalog.lookup([]) == []
    with pytest.raises(TypeError):
        catalog.lookup([["unhashable"]])


def test_a_key_whose_hash_equals_an_ids_hash_is_not_that_id(catalog):
    assert catalog.lookup([hash("show-1")]) == [None]  # an int with the same hash as the id


def test_repeated_ids_are_refused_naming_the_index(catalog, monkeypatch):
    ids = [PAD_ID, OOV_ID, "a", "b", "a"]
    with pytest.raises(BundleError):
        parse_items_tsv(format_items_tsv(ids, [""] * 5).encode(), 5)


@pytest.mark.parametrize("size, dict_index", [(item_catalog.DICT_INDEX_MAX_ITEMS, True),
                                               (item_catalog.DICT_INDEX_MAX_ITEMS + 1, False)])
def test_the_index_kind_follows_the_catalog_size(size, dict_index):
    ids = [PAD_ID, OOV_ID, *(f"i{n}" for n in range(size))]
    catalog = parse_items_tsv(format_items_tsv(ids, [""] * len(ids)).encode(), len(ids))
    assert (catalog._index is not None) == dict_index
    assert catalog.lookup(["i0", f"i{size - 1}", "missing"]) == [2, size + 1, None]
