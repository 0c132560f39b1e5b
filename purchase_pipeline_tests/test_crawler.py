"""The crawler run catalogs the landed hours and reports how the raw schema changed."""

import datetime as dt
import gzip
import json
import uuid

from purchase_pipeline.layout import landing_key
from purchase_pipeline_tests.conftest import Lake

HOUR = dt.datetime(2025, 3, 1, 9, tzinfo=dt.UTC)


def _land(lake: Lake, hour: dt.datetime, records: list[dict], n: int) -> str:
    key = landing_key(
        lake.settings.raw_prefix, lake.settings.stream, hour, True, uuid.UUID(int=n, version=4)
    )
    lake.put(key, gzip.compress("".join(json.dumps(r) + "\n" for r in records).encode()))
    return key


def test_new_and_changed_fields_show_up_in_the_crawl(lake: Lake) -> None:
    crawler = lake.resources["crawler"]
    store, catalog = lake.resources["object_store"], lake.resources["catalog"]
    base = {"bookId": "B1", "userId": "U1", "purchaseTimestamp": int(HOUR.timestamp()) + 5}
    _land(lake, HOUR, [base, {**base, "userAge": 30}], 1)
    lake.put(f"{lake.settings.raw_prefix}notes.txt", b"not purchase data")

    first = crawler.crawl(store, catalog)
    assert set(first.added_columns) == {"bookid", "userid", "purchasetimestamp", "userage"}
    assert first.partitions == 1 and first.new_partitions == 1
    assert first.skipped_keys == [f"{lake.settings.raw_prefix}notes.txt"]
    types = {c.name: c.type for c in first.columns}
    assert types["userage"] == "bigint" and types["bookid"] == "string"
    assert {"year", "month", "day", "hour"} <= set(types)

    # A new hour brings a new field, and an age that is now a string.
    later = HOUR + dt.timedelta(hours=1)
    _land(lake, later, [{**base, "coupon": "SPRING", "userAge": "thirty"}], 2)
    second = crawler.crawl(store, catalog)
    assert second.added_columns == ["coupon"]
    assert second.changed_columns == {"userage": "bigint -> string"}
    assert second.partitions == 2 and second.new_partitions == 1

    # Nothing new: nothing changes.
    third = crawler.crawl(store, catalog)
    assert third.added_columns == [] and third.changed_columns == {} and third.new_partitions == 0

    rows = lake.query("SELECT bookid, coupon, hour FROM purchases_raw ORDER BY hour")
    assert rows == [
        {"bookid": "B1", "coupon": None, "hour": "09"},
        {"bookid": "B1", "coupon": None, "hour": "09"},
        {"bookid": "B1", "coupon": "SPRING", "hour": "10"},
    ]
