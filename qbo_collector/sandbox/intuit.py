"""QuickBooks Online Accounting API v3, as python-quickbooks sees it.

Every request under ``/v3/company/<realm>/`` goes through one pipeline: fault injection
(``sb.intuit_faults.draw()``), bearer-token check, per-realm throttling on real time,
minorversion check, the operation, and one ``RequestLog`` entry. ``GET …/invoice/<id>/pdf``
answers a one-page PDF naming the invoice's number and total (``sb.refused_pdfs``: id → the detail
of a 400 ValidationFault instead); for an id in ``sb.broken_pdfs`` it
answers a 500 SystemFault every time, as QuickBooks does for an invoice it cannot render.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import flask

from qbo_collector.sandbox import common, oauth, query, store

if TYPE_CHECKING:
    from qbo_collector.sandbox.server import Sandbox

MIN_MINOR_VERSION = 75
MAX_BATCH_ITEMS = 30
CDC_MAX_DAYS = 30
CDC_MAX_OBJECTS = 1000
CDC_ENTITIES = set(store.LIST_ENTITIES + store.TXN_ENTITIES)


class Throttle:
    """Sliding windows on the real monotonic clock (the sandbox clock is for business time)."""

    def __init__(self, per_second: int | None, per_minute: int | None, batch_per_minute: int | None) -> None:
        self.per_second, self.per_minute, self.batch_per_minute = per_second, per_minute, batch_per_minute
        self._hits: dict[tuple[str, str], collections.deque[float]] = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()

    def allow(self, realm: str, *, batch: bool) -> float | None:
        """None when allowed, else the seconds to wait (for Retry-After)."""
        now = time.monotonic()
        with self._lock:
            checks = [("s", 1.0, self.per_second), ("m", 60.0, self.per_minute)]
            if batch:
                checks.append(("b", 60.0, self.batch_per_minute))
            for name, window, limit in checks:
                hits = self._hits[(realm, name)]
                while hits and hits[0] <= now - window:
                    hits.popleft()
                if limit is not None and len(hits) >= limit:
                    return max(hits[0] + window - now, 0.001)
            for name, _, limit in checks:
                self._hits[(realm, name)].append(now)
            return None


def _time(sb: Sandbox, realm: str | None = None) -> str:
    company = sb.intuit.companies.get(realm or "")
    now = sb.clock.now()
    if company is not None:
        return company.stamp(now)
    return now.astimezone(timezone(timedelta(hours=-8))).isoformat(timespec="milliseconds")


class RawJSON(str):
    """Rows already serialized (under the store lock), spliced into the response as they are."""


def _dumps(value: Any) -> str:
    if isinstance(value, RawJSON):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list) and any(isinstance(v, (RawJSON, dict, list)) for v in value):
        return "[" + ",".join(_dumps(v) for v in value) + "]"
    return json.dumps(value, separators=(",", ":"))


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> flask.Response:
    return flask.Response(_dumps(payload), status=status, mimetype="application/json", headers=headers)


class Api:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sb = sandbox
        self.throttle = Throttle(sandbox.rate_limit_per_second, sandbox.rate_limit_per_minute,
                                 sandbox.batch_limit_per_minute)
        self._throttle_count = 0

    def blueprint(self) -> flask.Blueprint:
        bp = flask.Blueprint("intuit_api", __name__)
        bp.add_url_rule("/v3/company/<realm>/<path:rest>", "api", self.handle, methods=["GET", "POST"])
        bp.add_url_rule("/pay/<realm>/<invoice_id>", "pay", self.pay_page, methods=["GET", "POST"])
        return bp

    # --- pipeline --------------------------------------------------------------------

    def handle(self, realm: str, rest: str) -> flask.Response:
        request = flask.request
        parts = [p for p in rest.split("/") if p]
        endpoint = self._endpoint_name(request.method, parts)
        status = 500
        try:
            response = self._pipeline(realm, parts, endpoint)
            status = response.status_code
            return response
        finally:
            self.sb.log.record(common.LoggedRequest(
                service="intuit", endpoint=endpoint, method=request.method, path=request.path,
                status=status, realm=realm, at=self.sb.clock.now()))

    def _endpoint_name(self, method: str, parts: list[str]) -> str:
        if not parts:
            return "unknown"
        head = parts[0].lower()
        if head in ("query", "batch", "cdc", "companyinfo", "preferences"):
            return head
        if head in store.ENTITIES:
            if len(parts) >= 3 and parts[2] == "send":
                return f"send:{head}"
            if len(parts) >= 3 and parts[2] == "pdf":
                return f"pdf:{head}"
            if method == "GET":
                return f"read:{head}"
            op = flask.request.args.get("operation", "").lower()
            if op in ("delete", "void"):
                return f"{op}:{head}"
            if flask.request.args.get("include", "").lower() == "void":
                return f"void:{head}"
            body = flask.request.get_json(silent=True, force=True) or {}
            return f"update:{head}" if isinstance(body, dict) and body.get("Id") else f"create:{head}"
        return head

    def _pipeline(self, realm: str, parts: list[str], endpoint: str) -> flask.Response:
        faults = self.sb.intuit_faults
        fate = faults.draw()
        if fate == "429":
            return self._throttled(realm, self.sb.forced_retry_after_seconds)
        if fate == "500":
            return _json({"Fault": {"Error": [{"Message": "An application error has occurred while processing your request",
                                               "Detail": "System Failure Error: An unexpected error occurred while accessing or saving your data. Please wait a few minutes and try again. If the problem persists, contact customer support.",
                                               "code": "10000", "element": ""}], "type": "SystemFault"},
                          "time": _time(self.sb, realm)}, 500)
        if fate == "timeout":
            time.sleep(faults.timeout_seconds)
        response = self._authorized(realm, parts, endpoint)
        if fate == "malformed" and response.status_code == 200:
            data = response.get_data()
            return flask.Response(data[: max(1, len(data) // 2)], status=200, mimetype="application/json")
        return response

    def _throttled(self, realm: str, retry_after: float) -> flask.Response:
        shapes = self.sb.throttle_bodies or ("Fault",)
        shape = shapes[self._throttle_count % len(shapes)]
        self._throttle_count += 1
        headers = {"Retry-After": str(max(1, int(retry_after + 0.999)))}
        if shape == "fault":   # the gateway's lowercase shape, as on 401
            return _json({"fault": {"error": [{"message": "message=ThrottleExceeded; errorCode=003001; statusCode=429",
                                               "detail": "The request limit was reached.", "code": "3001"}],
                                    "type": "SERVICE"}, "time": _time(self.sb, realm)}, 429, headers)
        if shape == "xml":   # and some throttles come back as XML
            xml = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?><IntuitResponse '
                   'xmlns="http://schema.intuit.com/finance/v3"><Fault type="ValidationFault">'
                   '<Error code="3001"><Message>message=ThrottleExceeded; errorCode=003001; statusCode=429'
                   '</Message><Detail>The request limit was reached.</Detail></Error></Fault></IntuitResponse>')
            return flask.Response(xml, status=429, mimetype="application/xml", headers=headers)
        return _json({"Fault": {"Error": [{"Message": "message=ThrottleExceeded; errorCode=003001; statusCode=429",
                                           "Detail": "The request limit was reached.", "code": "3001"}],
                                "type": "ValidationFault"}, "time": _time(self.sb, realm)}, 429, headers)

    def _authorized(self, realm: str, parts: list[str], endpoint: str) -> flask.Response:
        header = flask.request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        try:
            if not token:
                raise oauth.TokenProblem("Authorization header missing or not a Bearer token")
            self.sb.oauth.check_access_token(token, realm)
        except oauth.TokenProblem as problem:
            return _json({"warnings": None, "intuitObject": None, "fault": {"error": [{
                "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                "detail": problem.detail, "code": "3200"}], "type": "AUTHENTICATION"},
                "report": None, "queryResponse": None, "batchItemResponse": [], "attachableResponse": [],
                "syncErrorResponse": None, "requestId": None, "time": int(time.time() * 1000),
                "status": None, "cdcresponse": []}, 401)
        except PermissionError:
            return _json({"Fault": {"Error": [{"Message": "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
                                               "Detail": "", "code": "003100"}], "type": "SERVICE"},
                          "time": _time(self.sb, realm)}, 403)
        wait = self.throttle.allow(realm, batch=endpoint == "batch")
        if wait is not None:
            return self._throttled(realm, wait)
        minor = flask.request.args.get("minorversion")
        if self.sb.reject_old_minorversion and minor is not None:
            try:
                too_old = int(minor) < MIN_MINOR_VERSION
            except ValueError:
                too_old = True
            if too_old:
                return self._fault(realm, store.Fault(
                    "4000", "Invalid minorversion",
                    f"Minor version {minor} is no longer supported. The minimum supported minor version is "
                    f"{MIN_MINOR_VERSION}.", element="minorversion"))
        request_id = flask.request.args.get("requestid")
        company = self.sb.intuit.companies.get(realm)
        if request_id and flask.request.method == "POST" and company is not None:
            with self.sb.intuit.lock:
                replay = company.request_ids.get(request_id)
            if replay is not None:
                return _json(replay[1], replay[0])
        try:
            if len(parts) == 3 and parts[2].lower() == "pdf" and flask.request.method == "GET":
                return self._pdf(company, parts[0], parts[1])
            status, payload = self._dispatch(realm, parts)
        except store.Fault as fault:
            return self._fault(realm, fault, request_id=request_id)
        payload["time"] = _time(self.sb, realm)
        if request_id and flask.request.method == "POST" and company is not None:
            with self.sb.intuit.lock:
                company.request_ids.setdefault(request_id, (status, payload))
                status, payload = company.request_ids[request_id]
        return _json(payload, status)

    def _fault(self, realm: str, fault: store.Fault, *, request_id: str | None = None) -> flask.Response:
        payload = {"Fault": fault.body(), "time": _time(self.sb, realm)}
        company = self.sb.intuit.companies.get(realm)
        if request_id and company is not None and fault.status < 500:
            with self.sb.intuit.lock:
                company.request_ids.setdefault(request_id, (fault.status, payload))
        return _json(payload, fault.status)

    # --- operations ------------------------------------------------------------------

    def _body(self) -> dict[str, Any]:
        try:
            body = json.loads(flask.request.get_data() or b"{}")
        except ValueError:
            raise store.Fault("2010", "Request has invalid or unsupported property",
                              "Request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise store.Fault("2010", "Request has invalid or unsupported property", "Request body must be an object")
        return body

    def _dispatch(self, realm: str, parts: list[str]) -> tuple[int, dict[str, Any]]:
        intuit = self.sb.intuit
        company = intuit.company(realm)
        head = parts[0].lower() if parts else ""
        args = flask.request.args
        include_link = "invoicelink" in args.get("include", "").lower()
        if head == "query":
            text = args.get("query") if flask.request.method == "GET" else flask.request.get_data(as_text=True)
            if flask.request.method == "POST" and not text:
                text = args.get("query", "")
            return 200, {"QueryResponse": self.run_query(company, text or "", include_link=include_link)}
        if head == "batch":
            return 200, self.batch(company, self._body())
        if head == "cdc":
            return 200, self.cdc(company, args.get("entities", ""), args.get("changedSince", ""))
        if head == "companyinfo":
            return 200, {"CompanyInfo": company.info}
        if head == "preferences":
            return 200, {"Preferences": company.preferences}
        entity = store.canonical(head)
        if flask.request.method == "GET":
            if len(parts) < 2:
                raise store.Fault("2010", "Request has invalid or unsupported property", "Missing object id")
            with intuit.lock:
                row = company.tables[entity].get(parts[1])
                if row is None:
                    raise store.not_found(entity, parts[1])
                row = self._with_link(company, entity, row, include_link)
                return 200, {entity: RawJSON(json.dumps(row, separators=(",", ":")))}
        if len(parts) >= 3 and parts[2] == "send":
            return 200, {entity: intuit.send_invoice(realm, parts[1], args.get("sendTo"))}
        body = self._body()
        return 200, self.write(company, entity, body, args.get("operation", ""), args.get("include", ""))

    def write(self, company: store.Company, entity: str, body: dict[str, Any], operation: str,
              include: str) -> dict[str, Any]:
        intuit, realm = self.sb.intuit, company.realm
        operation = operation.lower()
        if operation == "delete":
            return {entity: intuit.api_delete(realm, entity, body)}
        if operation == "void" or include.lower() == "void":
            return {entity: intuit.api_void(realm, entity, body)}
        if body.get("Id"):
            return {entity: intuit.api_update(realm, entity, body, sparse=bool(body.get("sparse")))}
        return {entity: intuit.create(realm, entity, body, api=True)}

    def _with_link(self, company: store.Company, entity: str, row: dict[str, Any], include_link: bool) -> dict[str, Any]:
        if include_link and entity == "Invoice":
            link = self.sb.intuit.invoice_link(company, row)
            if link:
                return row | {"InvoiceLink": link}
        return row

    def run_query(self, company: store.Company, text: str, *, include_link: bool = False,
                  raw: bool = True) -> dict[str, Any]:
        try:
            q = query.parse(text)
        except query.QueryError as err:
            raise store.Fault(err.code, err.message, err.detail) from None
        name = q.entity
        if name.lower() == "companyinfo":
            rows, entity = [self.sb.intuit.companies[company.realm].info], "CompanyInfo"
        elif name.lower() == "preferences":
            rows, entity = [company.preferences], "Preferences"
        else:
            if name.lower() not in store.ENTITIES:
                raise store.Fault("4000", "Error parsing query",
                                  f"QueryParserError: Invalid entity name: {name}")
            entity = store.ENTITIES[name.lower()]
            rows = None
        try:
            with self.sb.intuit.lock:
                if rows is not None:
                    source = rows
                else:
                    table = company.tables[entity]
                    ids = query.id_candidates(q)
                    source = list(table.values()) if ids is None else [table[i] for i in ids if i in table]
                result = query.run(q, source, default_active_only=entity in store.LIST_ENTITIES,
                                   in_id_order=rows is None)
                page = [self._with_link(company, entity, r, include_link) for r in result.rows]
                text = json.dumps(page, separators=(",", ":"))
        except query.QueryError as err:
            raise store.Fault(err.code, err.message, err.detail) from None
        if q.count:
            return {"totalCount": result.total_count}
        if not page:
            return {}
        rows: Any = RawJSON(text) if raw else json.loads(text)
        return {entity: rows, "startPosition": q.start_position, "maxResults": len(page)}

    def batch(self, company: store.Company, body: dict[str, Any]) -> dict[str, Any]:
        items = body.get("BatchItemRequest")
        if not isinstance(items, list) or not items:
            raise store.required("BatchItemRequest")
        if len(items) > MAX_BATCH_ITEMS:
            raise store.Fault("4000", "Too many batch items",
                              f"The batch request has {len(items)} items; the maximum is {MAX_BATCH_ITEMS}.",
                              element="BatchItemRequest")
        answers: list[dict[str, Any]] = []
        for item in items:
            bid = item.get("bId")
            try:
                if "Query" in item:
                    answers.append({"bId": bid, "QueryResponse": self.run_query(company, item["Query"], raw=False)})
                    continue
                names = [k for k in item if k.lower() in store.ENTITIES]
                if len(names) != 1:
                    raise store.Fault("2010", "Request has invalid or unsupported property",
                                      "Each batch item needs exactly one entity or a Query")
                entity = store.canonical(names[0])
                op = str(item.get("operation", "create")).lower()
                payload = item[names[0]]
                if op == "create":
                    payload = {k: v for k, v in payload.items() if k != "Id"}
                result = self.write(company, entity, payload, op if op in ("delete", "void") else "", "")
                answers.append({"bId": bid, **result})
            except store.Fault as fault:
                answers.append({"bId": bid, "Fault": fault.body()})
        return {"BatchItemResponse": answers}

    def cdc(self, company: store.Company, entities_arg: str, changed_since: str) -> dict[str, Any]:
        if not entities_arg:
            raise store.required("entities")
        if not changed_since:
            raise store.required("changedSince")
        try:
            since = query.parse_instant(changed_since)
        except query.QueryError:
            raise store.Fault("2010", "Request has invalid or unsupported property",
                              f"Invalid changedSince: {changed_since}", element="changedSince") from None
        now = self.sb.clock.now()
        if since < now - timedelta(days=CDC_MAX_DAYS):
            # The sentence is Intuit's (reported in QuickBooksSharp#19); the code is our choice.
            text = (f"Operation cdc with changedSince date {changed_since} which is older than fixed days "
                    f"is not supported.")
            raise store.Fault("4000", text, f"{text} CDC looks back at most {CDC_MAX_DAYS} days.",
                              element="changedSince")
        since_ts = since.timestamp()
        responses: list[dict[str, Any]] = []
        # The brief's cap is per entity; Intuit's docs say 1000 objects per CDC response.
        budget = CDC_MAX_OBJECTS if self.sb.cdc_cap_per == "response" else None
        with self.sb.intuit.lock:
            for raw in entities_arg.split(","):
                name = raw.strip()
                if not name:
                    continue
                entity = store.canonical(name)
                # Intuit: "grouped by type and then in order of last updated time within the group.
                # Objects deleted within the look-back period are returned after active objects."
                deleted_last = self.sb.cdc_deleted_last
                changed: list[tuple[bool, float, int, dict[str, Any]]] = []
                for row in company.tables[entity].values():
                    ts = _instant(row["MetaData"]["LastUpdatedTime"])
                    if ts > since_ts:
                        changed.append((False, ts, int(row["Id"]), row))
                for tomb in company.tombstones[entity].values():
                    ts = _instant(tomb["MetaData"]["LastUpdatedTime"])
                    if ts > since_ts:
                        changed.append((deleted_last, ts, int(tomb["Id"]), tomb))
                changed.sort(key=lambda item: item[:3])
                cap = CDC_MAX_OBJECTS if budget is None else budget
                rows = [item[3] for item in changed[:cap]]
                if budget is not None:
                    budget -= len(rows)
                if rows:
                    responses.append({entity: RawJSON(json.dumps(rows, separators=(",", ":"))), "startPosition": 1,
                                      "maxResults": len(rows), "totalCount": len(rows)})
                else:
                    responses.append({})
        return {"CDCResponse": [{"QueryResponse": responses}]}

    def _pdf(self, company: store.Company | None, entity_name: str, id_: str) -> flask.Response:
        entity = store.canonical(entity_name)
        row = self.sb.intuit.get(company.realm, entity, id_) if company is not None else None
        if row is None:
            raise store.not_found(entity, id_)
        if str(id_) in self.sb.broken_pdfs:
            return _json({"Fault": {"Error": [{"Message": "An application error has occurred while processing your request",
                                               "Detail": "System Failure Error: Could not generate the PDF.",
                                               "code": "10000", "element": ""}], "type": "SystemFault"},
                          "time": _time(self.sb, company.realm)}, 500)
        if str(id_) in self.sb.refused_pdfs:
            raise store.Fault("6000", "A business validation error has occurred while processing your request",
                              f"Business Validation Error: {self.sb.refused_pdfs[str(id_)]}")
        text = f"{entity} {row.get('DocNumber', id_)} {row.get('TotalAmt', '')}".replace("(", "").replace(")", "")
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                   b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
                   b"/Resources << /Font << /F1 5 0 R >> >> >>",
                   b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
                   b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
        out, offsets = bytearray(b"%PDF-1.4\n"), []
        for n, body in enumerate(objects, start=1):
            offsets.append(len(out))
            out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
        xref = len(out)
        out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
        out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
        out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
        return flask.Response(bytes(out), mimetype="application/pdf")

    # --- the customer's pay page behind InvoiceLink ---------------------------------

    def pay_page(self, realm: str, invoice_id: str) -> flask.Response:
        intuit = self.sb.intuit
        row = intuit.get(realm, "Invoice", invoice_id) if realm in intuit.companies else None
        if row is None:
            return flask.Response("<h1>Invoice not found</h1>", status=404, mimetype="text/html")
        if flask.request.method == "POST" and row["Balance"] > 0:
            intuit.pay_invoice(realm, invoice_id)
            row = intuit.get(realm, "Invoice", invoice_id) or row
        cur = row["CurrencyRef"]["value"]
        state = "Paid — thank you." if row["Balance"] <= 0 else (
            f'<form method="post"><button type="submit">Pay {row["Balance"]} {cur}</button></form>')
        page = (f"<!doctype html><title>Invoice {row.get('DocNumber', invoice_id)}</title>"
                f"<h1>Invoice {row.get('DocNumber', invoice_id)}</h1>"
                f"<p>Amount due: {row['Balance']} {cur} (total {row['TotalAmt']} {cur}), due {row.get('DueDate', '—')}</p>{state}")
        return flask.Response(page, mimetype="text/html")


_instant_cache: dict[str, float] = {}


def _instant(text: str) -> float:
    value = _instant_cache.get(text)
    if value is None:
        value = datetime.fromisoformat(text).timestamp()
        if len(_instant_cache) > 500_000:
            _instant_cache.clear()
        _instant_cache[text] = value
    return value

