"""The sandbox's QBO query parser and evaluator (pure)."""

from __future__ import annotations

import pytest

from qbo_collector.sandbox import query
from qbo_collector.sandbox.query import Condition

ROWS = [
    {"Id": "1", "Balance": 0, "Active": True, "DueDate": "2026-10-01", "CustomerRef": {"value": "7"},
     "DisplayName": "Léa Martin", "MetaData": {"LastUpdatedTime": "2026-11-20T10:15:00-08:00"}},
    {"Id": "2", "Balance": 120.5, "Active": True, "DueDate": "2026-11-01", "CustomerRef": {"value": "8"},
     "DisplayName": "O'Brien Plumbing", "MetaData": {"LastUpdatedTime": "2026-11-20T19:00:00+01:00"}},
    {"Id": "10", "Balance": 30, "Active": False, "CustomerRef": {"value": "7"},
     "DisplayName": "Smith & Co.", "MetaData": {"LastUpdatedTime": "2026-11-21T00:00:00+00:00"}},
]


@pytest.mark.parametrize("text, expected", [
    pytest.param("SELECT * FROM Invoice", query.Query(entity="Invoice"), id="select star, default paging"),
    pytest.param("select count(*) from Customer", query.Query(entity="Customer", count=True), id="count, lower case"),
    pytest.param("SELECT * FROM Invoice WHERE Id IN ('1', '2') AND Balance > '0'",
                 query.Query(entity="Invoice", where=(Condition(field="Id", op="IN", value=("1", "2")),
                                                      Condition(field="Balance", op=">", value="0"))),
                 id="IN list and a comparison joined by AND"),
    pytest.param("SELECT * FROM Invoice ORDERBY MetaData.LastUpdatedTime DESC STARTPOSITION 1001 MAXRESULTS 1000",
                 query.Query(entity="Invoice", order_by=(("MetaData.LastUpdatedTime", True),),
                             start_position=1001, max_results=1000), id="ORDERBY with paging"),
    pytest.param("SELECT * FROM Customer ORDER BY DisplayName ASC, Id",
                 query.Query(entity="Customer", order_by=(("DisplayName", False), ("Id", False))),
                 id="ORDER BY two fields"),
    pytest.param("SELECT * FROM Customer WHERE Active IN (true, false)",
                 query.Query(entity="Customer", where=(Condition(field="Active", op="IN", value=(True, False)),)),
                 id="boolean literals"),
    pytest.param(r"SELECT * FROM Customer WHERE DisplayName = 'O\'Brien Plumbing'",
                 query.Query(entity="Customer", where=(Condition(field="DisplayName", op="=", value="O'Brien Plumbing"),)),
                 id="escaped quote as python-quickbooks sends it"),
    pytest.param("SELECT *, Sku FROM Item MAXRESULTS 100", query.Query(entity="Item"),
                 id="python-quickbooks Item.all() select list"),
    pytest.param("SELECT Id, Balance FROM Invoice", query.Query(entity="Invoice", fields=("Id", "Balance")),
                 id="projection"),
    pytest.param("SELECT * FROM Invoice  WHERE Balance >= 10 ;",
                 query.Query(entity="Invoice", where=(Condition(field="Balance", op=">=", value=10),)),
                 id="number literal and trailing semicolon"),
])
def test_parse(text, expected):
    assert query.parse(text) == expected


@pytest.mark.parametrize("text, code", [
    pytest.param("SELECT * FROM Invoice MAXRESULTS 1001", "4001", id="more than 1000 results"),
    pytest.param("SELECT * FROM Invoice STARTPOSITION 0", "4001", id="zero start position"),
    pytest.param("SELEKT * FROM Invoice", "4000", id="misspelt keyword"),
    pytest.param("SELECT * FROM Invoice WHERE Balance > '0' OR Id = '1'", "4000", id="OR is not QBO"),
    pytest.param("SELECT * FROM Invoice WHERE", "4000", id="dangling WHERE"),
    pytest.param("", "4000", id="empty"),
])
def test_parse_errors(text, code):
    with pytest.raises(query.QueryError) as err:
        query.parse(text)
    assert err.value.code == code


def _ids(text, rows=ROWS, **kwargs):
    return [r["Id"] for r in query.run(query.parse(text), rows, **kwargs).rows]


@pytest.mark.parametrize("text, ids", [
    pytest.param("SELECT * FROM Invoice WHERE Balance > '0'", ["2", "10"], id="balance above zero"),
    pytest.param("SELECT * FROM Invoice WHERE Balance = '0'", ["1"], id="balance zero"),
    pytest.param("SELECT * FROM Invoice WHERE Id > '2'", ["10"], id="ids compare as numbers"),
    pytest.param("SELECT * FROM Invoice WHERE CustomerRef = '7'", ["1", "10"], id="reference compares on value"),
    pytest.param("SELECT * FROM Invoice WHERE DueDate < '2026-10-15'", ["1"], id="dates; missing DueDate never matches"),
    pytest.param("SELECT * FROM Invoice WHERE MetaData.LastUpdatedTime > '2026-11-20T18:30:00Z'", ["10"],
                 id="instants across offsets"),
    pytest.param("SELECT * FROM Invoice WHERE MetaData.LastUpdatedTime >= '2026-11-20T18:00:00'", ["1", "2", "10"],
                 id="instant without offset is UTC"),
    pytest.param("SELECT * FROM Invoice WHERE MetaData.LastUpdatedTime < '2026-11-20T18:15:00-00:00'", ["2"],
                 id="less than"),
    pytest.param("SELECT * FROM Customer WHERE DisplayName LIKE '%martin%'", ["1"], id="LIKE, case-insensitive"),
    pytest.param("SELECT * FROM Invoice ORDERBY Balance DESC", ["2", "10", "1"], id="order by number desc"),
    pytest.param("SELECT * FROM Invoice ORDERBY Id", ["1", "2", "10"], id="order by numeric id"),
    pytest.param("SELECT * FROM Invoice STARTPOSITION 2 MAXRESULTS 1", ["2"], id="paging"),
    pytest.param("SELECT * FROM Invoice WHERE Active = false", ["10"], id="boolean"),
])
def test_run(text, ids):
    assert _ids(text) == ids


def test_list_entities_hide_inactive_unless_active_is_queried():
    assert _ids("SELECT * FROM Customer", default_active_only=True) == ["1", "2"]
    assert _ids("SELECT * FROM Customer WHERE Active IN (true, false)", default_active_only=True) == ["1", "2", "10"]


def test_count_ignores_paging():
    result = query.run(query.parse("SELECT COUNT(*) FROM Invoice WHERE Balance > '0' MAXRESULTS 1"), ROWS)
    assert result.total_count == 2 and result.rows == []


def test_projection_keeps_id():
    rows = query.run(query.parse("SELECT Balance FROM Invoice WHERE Id = '2'"), ROWS).rows
    assert rows == [{"Id": "2", "Balance": 120.5, "domain": "QBO", "sparse": True}]


@pytest.mark.parametrize("text, ids", [
    pytest.param("SELECT * FROM Invoice", None, id="no Id condition"),
    pytest.param("SELECT * FROM Invoice WHERE Id = '7'", ["7"], id="Id equals"),
    pytest.param("SELECT * FROM Invoice WHERE Id IN ('10', '9', '100') AND Balance > '0'", ["9", "10", "100"],
                 id="Id IN, numeric order"),
    pytest.param("SELECT * FROM Invoice WHERE Id IN ('1', '2') AND Id = '2'", ["2"], id="intersection"),
    pytest.param("SELECT * FROM Invoice WHERE Id > '5'", None, id="range is a scan"),
])
def test_id_candidates(text, ids):
    assert query.id_candidates(query.parse(text)) == ids


def test_rows_promised_in_id_order_are_not_resorted_but_give_the_same_answer():
    rows = [{"Id": str(n), "Balance": n % 7} for n in range(1, 50)]
    for text in ("SELECT * FROM Invoice ORDERBY Id STARTPOSITION 5 MAXRESULTS 10",
                 "SELECT * FROM Invoice WHERE Balance > '2' ORDERBY Id DESC MAXRESULTS 7"):
        q = query.parse(text)
        assert query.run(q, rows, in_id_order=True).rows == query.run(q, rows).rows
