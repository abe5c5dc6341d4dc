"""The QuickBooks Online query language, as much of it as the stand-in answers.

Pure: ``parse(text) -> Query`` and ``run(query, rows) -> Result``; no Flask, no store.

    SELECT * | COUNT(*) | Field, Field FROM Entity
      [WHERE cond [AND cond ...]]          cond: Field op literal | Field IN (lit, ...) | Field LIKE '%x%'
      [ORDERBY | ORDER BY Field [ASC|DESC][, ...]]
      [STARTPOSITION n] [MAXRESULTS n]

Keywords and field names are case-insensitive, as in QBO. Literals are single-quoted
strings (``\\'`` escapes a quote), numbers or ``true``/``false``. Reference fields
(``CustomerRef``) compare on their ``value``; ``...Time`` fields compare as instants
(a literal without offset is UTC); digit-only strings (Ids) compare as numbers.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

MAX_RESULTS_LIMIT = 1000
DEFAULT_MAX_RESULTS = 100  # what QBO returns when MAXRESULTS is absent


class QueryError(ValueError):
    """A query QBO would refuse; ``code``/``message``/``detail`` are QBO's fault fields."""

    def __init__(self, detail: str, *, code: str = "4000", message: str = "Error parsing query") -> None:
        super().__init__(detail)
        self.code = code
        self.message = message
        self.detail = detail


@dataclass(frozen=True, kw_only=True)
class Condition:
    field: str
    op: str                 # "=", "!=", "<", "<=", ">", ">=", "IN", "LIKE"
    value: Any              # a literal, or a tuple of literals for IN


@dataclass(frozen=True, kw_only=True)
class Query:
    entity: str
    count: bool = False
    fields: tuple[str, ...] = ()          # empty means "*"
    where: tuple[Condition, ...] = ()
    order_by: tuple[tuple[str, bool], ...] = ()   # (field, descending)
    start_position: int = 1
    max_results: int = DEFAULT_MAX_RESULTS

    def mentions(self, field_name: str) -> bool:
        return any(c.field.lower() == field_name.lower() for c in self.where)


@dataclass(frozen=True, kw_only=True)
class Result:
    rows: list[dict[str, Any]] = field(default_factory=list)
    total_count: int = 0


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>'(?:\\.|[^'\\])*')
      | (?P<num>-?\d+(?:\.\d+)?(?![\w.]))
      | (?P<op><=|>=|!=|<>|=|<|>)
      | (?P<punct>[(),*])
      | (?P<word>[A-Za-z_][\w.]*)
    )""",
    re.VERBOSE,
)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip().rstrip(";")
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            if text[pos:].strip() == "":
                break
            raise QueryError(f"QueryParserError: Encountered \"{text[pos:pos + 10].strip()}\" at column {pos + 1}.")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def next(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise QueryError("QueryParserError: Encountered \"<EOF>\" unexpectedly.")
        self.i += 1
        return tok

    def keyword(self, *words: str) -> str | None:
        tok = self.peek()
        if tok and tok[0] == "word" and tok[1].upper() in words:
            self.i += 1
            return tok[1].upper()
        return None

    def expect_keyword(self, word: str) -> None:
        if not self.keyword(word):
            tok = self.peek()
            raise QueryError(f"QueryParserError: Encountered \"{tok[1] if tok else '<EOF>'}\", expected {word}.")

    def expect(self, kind: str, value: str | None = None) -> str:
        tok = self.next()
        if tok[0] != kind or (value is not None and tok[1] != value):
            raise QueryError(f"QueryParserError: Encountered \"{tok[1]}\" at token {self.i}.")
        return tok[1]

    def literal(self) -> Any:
        kind, value = self.next()
        if kind == "str":
            return value[1:-1].replace("\\'", "'").replace("\\\\", "\\")
        if kind == "num":
            return float(value) if "." in value else int(value)
        if kind == "word" and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise QueryError(f"QueryParserError: Encountered \"{value}\", expected a value.")

    def integer(self, what: str) -> int:
        kind, value = self.next()
        if kind == "str":
            value = value[1:-1]
        try:
            return int(value)
        except ValueError:
            raise QueryError(f"QueryParserError: {what} must be a number, got \"{value}\".") from None

    def parse(self) -> Query:
        self.expect_keyword("SELECT")
        count = False
        fields: list[str] = []
        tok = self.peek()
        if tok and tok[0] == "word" and tok[1].upper() == "COUNT":
            self.i += 1
            self.expect("punct", "(")
            self.expect("punct", "*")
            self.expect("punct", ")")
            count = True
        else:
            while True:
                kind, value = self.next()
                if kind == "punct" and value == "*":
                    fields.append("*")
                elif kind == "word" and value.upper() != "FROM":
                    fields.append(value)
                else:
                    raise QueryError(f"QueryParserError: Encountered \"{value}\" in the select list.")
                tok = self.peek()
                if tok == ("punct", ","):
                    self.i += 1
                    continue
                break
        self.expect_keyword("FROM")
        entity = self.expect("word")
        where: list[Condition] = []
        order_by: list[tuple[str, bool]] = []
        start, max_results = 1, DEFAULT_MAX_RESULTS
        if self.keyword("WHERE"):
            where.append(self.condition())
            while self.keyword("AND"):
                where.append(self.condition())
            if self.keyword("OR"):
                raise QueryError("QueryParserError: OR is not supported in QBO queries.")
        ordered = bool(self.keyword("ORDERBY"))
        if not ordered and self.keyword("ORDER"):
            self.expect_keyword("BY")
            ordered = True
        if ordered:
            while True:
                name = self.expect("word")
                desc = self.keyword("ASC", "DESC") == "DESC"
                order_by.append((name, desc))
                if self.peek() == ("punct", ","):
                    self.i += 1
                    continue
                break
        while self.peek() is not None:
            kw = self.keyword("STARTPOSITION", "MAXRESULTS")
            if kw == "STARTPOSITION":
                start = self.integer("STARTPOSITION")
            elif kw == "MAXRESULTS":
                max_results = self.integer("MAXRESULTS")
            else:
                raise QueryError(f"QueryParserError: Encountered \"{self.next()[1]}\" after the query.")
        if max_results > MAX_RESULTS_LIMIT:
            raise QueryError(f"QueryValidationError: value {max_results} is too large. Max allowed value is {MAX_RESULTS_LIMIT}",
                             code="4001", message="Invalid query")
        if max_results < 1 or start < 1:
            raise QueryError("QueryValidationError: STARTPOSITION and MAXRESULTS must be positive",
                             code="4001", message="Invalid query")
        selected = () if not fields or "*" in fields else tuple(fields)
        return Query(entity=entity, count=count, fields=selected, where=tuple(where),
                     order_by=tuple(order_by), start_position=start, max_results=max_results)

    def condition(self) -> Condition:
        name = self.expect("word")
        tok = self.next()
        if tok[0] == "op":
            op = "!=" if tok[1] == "<>" else tok[1]
            return Condition(field=name, op=op, value=self.literal())
        if tok[0] == "word" and tok[1].upper() == "IN":
            self.expect("punct", "(")
            values = [self.literal()]
            while self.peek() == ("punct", ","):
                self.i += 1
                values.append(self.literal())
            self.expect("punct", ")")
            return Condition(field=name, op="IN", value=tuple(values))
        if tok[0] == "word" and tok[1].upper() == "LIKE":
            return Condition(field=name, op="LIKE", value=self.literal())
        raise QueryError(f"QueryParserError: Encountered \"{tok[1]}\" after \"{name}\".")


def parse(text: str) -> Query:
    """Parse one QBO query statement, raising ``QueryError`` the way QBO faults."""
    if not text or not text.strip():
        raise QueryError("QueryParserError: Encountered \"<EOF>\" at line 1, column 1.")
    return _Parser(text).parse()


# --- evaluation -------------------------------------------------------------------


def lookup(row: dict[str, Any], path: str) -> Any:
    """Value at a dotted, case-insensitive path; a reference (``{"value": …}``) yields its value."""
    value: Any = row
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        if part in value:
            value = value[part]
        else:
            lowered = part.lower()
            for key in value:
                if key.lower() == lowered:
                    value = value[key]
                    break
            else:
                return None
    if isinstance(value, dict) and "value" in value:
        return value["value"]
    return value


def parse_instant(text: str) -> datetime:
    """An ISO date or date-time; without an offset it is taken as UTC."""
    text = text.strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise QueryError(f"QueryValidationError: invalid date-time \"{text}\"", code="4001",
                         message="Invalid query") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


@functools.lru_cache(maxsize=262_144)
def _instant_ts(text: str) -> float:
    return parse_instant(text).timestamp()


def _comparable(field_name: str, row_value: Any, literal: Any) -> tuple[Any, Any] | None:
    if row_value is None:
        return None
    if isinstance(row_value, bool):
        if isinstance(literal, str):
            literal = literal.lower() == "true"
        return row_value, bool(literal)
    if isinstance(row_value, (int, float)):
        try:
            return row_value, float(literal)
        except (TypeError, ValueError):
            return None
    if isinstance(row_value, str):
        if field_name.lower().endswith("time"):
            return _instant_ts(row_value), _instant_ts(str(literal))
        lit = str(literal) if not isinstance(literal, bool) else str(literal).lower()
        if row_value.isdigit() and lit.isdigit():
            return int(row_value), int(lit)
        return row_value.lower(), lit.lower()
    return None


def _like(value: str, pattern: str) -> bool:
    regex = "^" + ".*".join(re.escape(part) for part in pattern.lower().split("%")) + "$"
    return re.match(regex, value.lower(), re.DOTALL) is not None


def matches(condition: Condition, row: dict[str, Any]) -> bool:
    row_value = lookup(row, condition.field)
    if condition.op == "IN":
        return any(matches(Condition(field=condition.field, op="=", value=v), row) for v in condition.value)
    if condition.op == "LIKE":
        return isinstance(row_value, str) and _like(row_value, str(condition.value))
    pair = _comparable(condition.field, row_value, condition.value)
    if pair is None:
        return False
    a, b = pair
    try:
        return {
            "=": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b,
        }[condition.op]
    except TypeError:
        return False


def _sort_key(field_name: str, descending: bool):  # type: ignore[no-untyped-def]
    if field_name.lower() == "id":   # the common paging order: keep it cheap on 100,000 rows
        def by_id(row: dict[str, Any]) -> tuple[int, Any]:
            value = str(row.get("Id", ""))
            return (0, int(value)) if value.isdigit() else (1, value)
        return by_id

    def key(row: dict[str, Any]) -> tuple[int, Any]:
        value = lookup(row, field_name)
        if value is None:
            return (1, "")
        if isinstance(value, str):
            if field_name.lower().endswith("time"):
                return (0, _instant_ts(value))
            if value.isdigit():
                return (0, int(value))
            return (0, value.lower())
        return (0, value)
    return key


def id_candidates(query: Query) -> list[str] | None:
    """The Ids a query is restricted to (``Id = …`` / ``Id IN (…)``), in Id order; None when unrestricted.

    Lets the store look rows up by key instead of scanning a 100,000-row table.
    """
    chosen: set[str] | None = None
    for c in query.where:
        if c.field.lower() != "id" or c.op not in ("=", "IN"):
            continue
        values = {str(v) for v in (c.value if c.op == "IN" else (c.value,))}
        chosen = values if chosen is None else chosen & values
    if chosen is None:
        return None
    return sorted(chosen, key=lambda v: (not v.isdigit(), int(v) if v.isdigit() else 0, v))


def run(query: Query, rows: Iterable[dict[str, Any]], *, default_active_only: bool = False,
        in_id_order: bool = False) -> Result:
    """Filter, order and page ``rows`` as QBO would.

    ``default_active_only``: list entities (Customer, Term, Item…) hide inactive rows
    unless the query itself mentions ``Active``. ``in_id_order``: the caller promises
    ``rows`` come in ascending numeric Id order (the store's tables do), so ``ORDERBY Id``
    costs nothing on 100,000 rows.
    """
    conditions = list(query.where)
    active_only = default_active_only and not query.mentions("Active")
    if not conditions and not active_only:
        selected = rows if isinstance(rows, list) else list(rows)
        if query.order_by:
            selected = list(selected)
    else:
        selected = [r for r in rows
                    if (not active_only or r.get("Active", True))
                    and all(matches(c, r) for c in conditions)]
    if query.count:
        return Result(rows=[], total_count=len(selected))
    if in_id_order and len(query.order_by) == 1 and query.order_by[0][0].lower() == "id":
        if query.order_by[0][1]:
            selected = selected[::-1]
    else:
        for name, desc in reversed(query.order_by):
            selected.sort(key=_sort_key(name, desc), reverse=desc)
    page = selected[query.start_position - 1: query.start_position - 1 + query.max_results]
    if query.fields:
        wanted = {f.lower() for f in query.fields} | {"id"}
        page = [{k: v for k, v in r.items() if k.lower() in wanted} | {"domain": "QBO", "sparse": True}
                for r in page]
    return Result(rows=page, total_count=len(selected))
