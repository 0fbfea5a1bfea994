"""A small client of mailroomd's HTTP API (docs/HTTP.md), standard library only.

    from mailroom_http import Mailroom
    mr = Mailroom("http://127.0.0.1:7480")
    mr.publish("orders", key="42", value="hello")
    with mr.subscribe("billing", "orders") as s:
        batch = s.fetch(max_messages=10, wait_ms=5000)
        for m in batch:
            print(m["partition"], m["offset"], m["key"], m.value_bytes)
        s.ack(batch)

The token is the `token` argument, else $MAILROOM_HTTP_TOKEN, else the first
line of the file named by $MAILROOM_HTTP_TOKEN_FILE. Every call that fails
raises MailroomError. Not thread-safe: use one Mailroom per thread.
"""

import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request

__all__ = ["Mailroom", "Session", "Message", "MailroomError", "message",
           "read_token_file"]


class MailroomError(Exception):
    """A refused or failed request: the HTTP status (0 when mailroomd could
    not be reached), mailroom's error name and its sentence. `body` is the
    answer's JSON (a partly failed publish lists every ack in body["acks"])."""

    def __init__(self, status, error, message, body=None):
        super().__init__(f"{error}: {message}" +
                         (f" (HTTP {status})" if status else ""))
        self.status = status
        self.error = error
        self.message = message
        self.body = body if body is not None else {}

    @property
    def acks(self):
        """The acks of a publish that failed in part, else []."""
        return self.body.get("acks") or []


def _decode(value, encoding):
    if value is None:
        return None
    if encoding == "base64":
        return base64.b64decode(value)
    return value.encode("utf-8")


class Message(dict):
    """A fetched message: the API's JSON object, plus its bytes decoded."""

    @property
    def value_bytes(self):
        """The payload's bytes."""
        return _decode(self.get("value"), self.get("value_encoding"))

    @property
    def key_bytes(self):
        """The key's bytes, or None for a null key."""
        return _decode(self.get("key"), self.get("key_encoding"))

    def header(self, name, default=None):
        """The bytes of the first header called `name`, else `default`."""
        for h in self.get("headers") or []:
            if h.get("name") == name:
                return _decode(h.get("value"), h.get("value_encoding"))
        return default


def _handles(handles):
    """Handles from a handle, a message, or a list of either."""
    if isinstance(handles, (str, int, dict)):
        handles = [handles]
    return [h["handle"] if isinstance(h, dict) else h for h in handles]


def _token_from_env():
    token = os.environ.get("MAILROOM_HTTP_TOKEN")
    if token:
        return token
    path = os.environ.get("MAILROOM_HTTP_TOKEN_FILE")
    if path:
        return read_token_file(path)
    return None


def read_token_file(path):
    """The first line of `path`, stripped."""
    with open(path, encoding="utf-8") as f:
        return f.readline().strip()


def _bytes_to_base64(m):
    """A copy of message dict `m` with bytes key and value as base64."""
    m = dict(m)
    for name in ("key", "value"):
        if isinstance(m.get(name), (bytes, bytearray)):
            m[name + "_base64"] = base64.b64encode(m.pop(name)).decode("ascii")
    return m


def message(key=None, value=None, headers=None, id=None):
    """One message for Mailroom.publish: bytes go as base64, str as text,
    anything else as its JSON text; a key of None is a null key."""
    m = {"value": value}
    if key is not None:
        m["key"] = key
    if headers:
        m["headers"] = dict(headers)
    if id is not None:
        m["id"] = id
    return _bytes_to_base64(m)


class Mailroom:
    """mailroomd's HTTP API at `url` (http://host:port)."""

    def __init__(self, url="http://127.0.0.1:7480", token=None, timeout=60.0):
        self.url = url.rstrip("/")
        self.token = token if token is not None else _token_from_env()
        self.timeout = timeout

    # --- the transport -----------------------------------------------------

    def request(self, method, path, body=None, query=None, headers=None,
                timeout=None):
        """`method` `path` with a JSON body (or bytes as they are); the
        answer's JSON. Raises MailroomError for a 4xx or 5xx answer."""
        url = self.url + path
        if query:
            q = {k: (str(v).lower() if isinstance(v, bool) else v)
                 for k, v in query.items() if v is not None}
            url += "?" + urllib.parse.urlencode(q)
        hdrs = dict(headers or {})
        data = None
        if isinstance(body, (bytes, bytearray)):
            data = bytes(body)
        elif body is not None:
            data = json.dumps(body).encode("utf-8")
            hdrs.setdefault("Content-Type", "application/json")
        elif method in ("POST", "PUT"):
            data = b""
            hdrs.setdefault("Content-Type", "application/json")
        if self.token:
            hdrs["Authorization"] = "Bearer " + self.token
        req = urllib.request.Request(url, data=data, headers=hdrs,
                                     method=method)
        try:
            with urllib.request.urlopen(
                    req, timeout=timeout or self.timeout) as resp:
                return self._json(resp.status, resp.read())
        except urllib.error.HTTPError as e:
            answer = self._json(e.code, e.read(), strict=False)
            raise MailroomError(e.code, answer.get("error", "MR_EPROTO"),
                                answer.get("message", e.reason),
                                answer) from None
        except urllib.error.URLError as e:
            raise MailroomError(0, "MR_ECONNREFUSED",
                                f"cannot reach {self.url}: {e.reason}") from None
        except OSError as e:  # a timeout or a reset mid-answer
            raise MailroomError(0, "MR_ETRANSPORT",
                                f"{self.url}: {e}") from None

    @staticmethod
    def _json(status, raw, strict=True):
        try:
            answer = json.loads(raw or b"{}")
        except ValueError:
            if not strict:
                return {"message": raw[:200].decode("utf-8", "replace")}
            raise MailroomError(status, "MR_EPROTO",
                                "the answer is not JSON") from None
        if not isinstance(answer, dict):
            raise MailroomError(status, "MR_EPROTO",
                                "the answer is not a JSON object")
        return answer

    # --- publishing --------------------------------------------------------

    def publish(self, topic, messages=None, *, key=None, value=None,
                headers=None, id=None):
        """Publish `messages` (a list of dicts made by message(), or one),
        or one message from key/value/headers/id; the list of acks."""
        if messages is None:
            body = message(key, value, headers, id)
        elif isinstance(messages, dict):
            body = _bytes_to_base64(messages)
        else:
            body = {"messages": [_bytes_to_base64(m) for m in messages]}
        path = "/v1/topics/%s/messages" % urllib.parse.quote(topic, safe="")
        return self.request("POST", path, body)["acks"]

    def publish_raw(self, topic, key, body, content_type=None, *,
                    ce_type=None, ce_source=None, ce_id=None, ce_time=None,
                    headers=None):
        """Publish `body` (bytes or str) as is, CloudEvents binary mode:
        `content_type` becomes the content-type header (default
        application/octet-stream for bytes, text/plain for str), ce_* the
        ce_* headers; `headers` adds HTTP headers (ce-*, mr-*). The ack."""
        if isinstance(body, str):
            body = body.encode("utf-8")
            content_type = content_type or "text/plain; charset=utf-8"
        hdrs = {"Content-Type": content_type or "application/octet-stream"}
        for name, v in (("ce-type", ce_type), ("ce-source", ce_source),
                        ("ce-id", ce_id), ("ce-time", ce_time)):
            if v is not None:
                hdrs[name] = v
        hdrs.update(headers or {})
        path = "/v1/topics/%s/messages/%s" % (
            urllib.parse.quote(topic, safe=""),
            urllib.parse.quote(key, safe=""))
        return self.request("POST", path, bytes(body), headers=hdrs)["acks"][0]

    # --- consuming ---------------------------------------------------------

    def subscribe(self, group, topics, **opts):
        """A new Session of `group` on `topics` (a name or a list); opts are
        SUBSCRIBE's (mode, ack_deadline_ms, credit, start, retry, ...)."""
        if isinstance(topics, str):
            topics = [topics]
        body = dict(opts, group=group, topics=list(topics))
        return Session(self, self.request("POST", "/v1/sessions", body))

    # --- administration ----------------------------------------------------

    def status(self):
        """STATUS's JSON."""
        return self.request("GET", "/v1/status")

    def topics(self):
        """[{name, partitions}]."""
        return self.request("GET", "/v1/topics")["topics"]

    def create_topic(self, topic, partitions=-1, replication=-1, config=None):
        """topics.create's answer."""
        body = {"topic": topic, "partitions": partitions,
                "replication": replication}
        if config:
            body["config"] = config
        return self.request("POST", "/v1/topics", body)

    def lag(self, group=None, topic=None, refresh=None):
        """lag.list's answer."""
        return self.request("GET", "/v1/lag", query={
            "group": group, "topic": topic, "refresh": refresh})

    def admin(self, op, **fields):
        """Any ADMIN operation, e.g. admin("bounds.list")."""
        return self.request("POST", "/v1/admin", dict(fields, op=op))


class Session:
    """A consumer session: fetch, settle by handle, close. `info` is the
    subscription in force (SUBSCRIBE's reply)."""

    def __init__(self, client, info):
        self.client = client
        self.info = info
        self.id = info["session"]
        self._path = "/v1/sessions/" + self.id

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def fetch(self, max_messages=100, wait_ms=1000, max_bytes=0):
        """Up to `max_messages` messages, waiting up to `wait_ms` for a
        first one: a list of Message (empty when none came)."""
        answer = self.client.request(
            "POST", self._path + "/fetch",
            {"max_messages": max_messages, "max_bytes": max_bytes,
             "wait_ms": wait_ms},
            timeout=self.client.timeout + wait_ms / 1000.0)
        return [Message(m) for m in answer["messages"]]

    def _settle(self, kind, handles, **extra):
        body = dict(extra, handles=_handles(handles))
        return self.client.request("POST", self._path + "/" + kind, body)

    def ack(self, handles):
        """Ack handles (or messages): {settled, failed}."""
        return self._settle("ack", handles)

    def nack(self, handles, reason=None):
        """Hand them out again after the retry back-off."""
        return self._settle("nack", handles,
                            **({"reason": reason} if reason else {}))

    def reject(self, handles, reason=None):
        """Quarantine them in the dead-letter topic at once."""
        return self._settle("reject", handles,
                            **({"reason": reason} if reason else {}))

    def extend(self, handles, extend_ms):
        """Move their ack deadline to now + extend_ms."""
        return self._settle("extend", handles, extend_ms=extend_ms)

    def assignment(self):
        """[{topic, partition}] the session's subscription holds."""
        return self.client.request("GET", self._path + "/assignment")["partitions"]

    def close(self):
        """End the session; what it held is handed out again. Idempotent."""
        if self.id is None:
            return
        sid, self.id = self.id, None
        try:
            self.client.request("DELETE", "/v1/sessions/" + sid)
        except MailroomError as e:
            if e.status != 404:  # already ended (idle): nothing to do
                raise
