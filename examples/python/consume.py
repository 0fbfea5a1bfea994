#!/usr/bin/env python3
"""An example service: consume a topic as a consumer group over mailroomd's
HTTP API, print each message and ack each batch.

    python3 consume.py --url http://127.0.0.1:7480 --group G --topic T [--count N]

Each message is one line, "partition offset key value": text as it is, with
'%', space, tab, CR and LF percent-encoded (so a line is four fields); bytes
that are not text as "base64:..."; a null key as "-". Stops after --count
messages (default: runs until Ctrl-C), then closes the session. Exit 0 on
success, 1 on an error (said on stderr), 2 on bad arguments.
"""

import argparse
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mailroom_http import Mailroom, MailroomError, read_token_file  # noqa: E402

_ESCAPE = {c: "%%%02X" % ord(c) for c in "% \t\r\n"}


def show(value, encoding):
    """One field of the line: see the module's docstring."""
    if value is None:
        return "-"
    if encoding == "base64":
        return "base64:" + value
    return "".join(_ESCAPE.get(c, c) for c in value)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default=os.environ.get(
        "MAILROOM_HTTP_URL", "http://127.0.0.1:7480"),
                   help="mailroomd's HTTP API (default: $MAILROOM_HTTP_URL, "
                        "else http://127.0.0.1:7480)")
    p.add_argument("--group", required=True)
    p.add_argument("--topic", required=True, action="append",
                   help="a topic (may be given more than once)")
    p.add_argument("--count", type=int, default=0,
                   help="stop after this many messages (0: run until Ctrl-C)")
    p.add_argument("--token-file",
                   help="the token's file (default: $MAILROOM_HTTP_TOKEN, "
                        "else $MAILROOM_HTTP_TOKEN_FILE)")
    p.add_argument("--batch", type=int, default=100,
                   help="messages per fetch (default 100)")
    p.add_argument("--wait-ms", type=int, default=5000,
                   help="how long a fetch waits for a first message")
    args = p.parse_args()
    if args.count < 0 or args.batch < 1:
        p.error("--count must be >= 0 and --batch >= 1")

    try:
        token = read_token_file(args.token_file) if args.token_file else None
    except OSError as e:
        print("consume.py: cannot read the token file: %s" % e,
              file=sys.stderr)
        return 1
    # SIGTERM ends the loop as Ctrl-C does, so the session is closed.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    session = None
    seen = 0
    try:
        session = Mailroom(args.url, token=token).subscribe(args.group,
                                                            args.topic)
        while args.count == 0 or seen < args.count:
            n = args.batch
            if args.count:
                n = min(n, args.count - seen)  # never hold what we won't ack
            batch = session.fetch(max_messages=n, wait_ms=args.wait_ms)
            for m in batch:
                print(m["partition"], m["offset"],
                      show(m["key"], m.get("key_encoding")),
                      show(m["value"], m.get("value_encoding")))
            if batch:
                sys.stdout.flush()
                answer = session.ack(batch)
                if answer.get("failed"):
                    raise MailroomError(200, answer["failed"][0]["error"],
                                        "ack refused for %d handles: %s" % (
                                            len(answer["failed"]),
                                            answer["failed"][:5]))
                seen += len(batch)
        session.close()
        return 0
    except KeyboardInterrupt:
        return 0
    except MailroomError as e:
        print("consume.py: %s" % e, file=sys.stderr)
        return 1
    except BrokenPipeError:  # stdout closed (| head): stop quietly
        sys.stderr.close()
        return 1
    finally:
        if session is not None:
            try:
                session.close()  # what it still holds is handed out again
            except MailroomError:
                pass


if __name__ == "__main__":
    sys.exit(main())
