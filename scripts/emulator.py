"""Local AWS emulator for the tests and the demo.

moto's server (EC2 + SQS over HTTP) behind a thin test-only layer that adds what real EC2 does and
moto 5.2.5 does not, for CopyImage:
  * ClientToken idempotency: the same token in the same region answers with the same image, no new copy;
  * TagSpecifications: tags put on the new image and its snapshot at creation;
  * CopyImageTags: the source's user-defined tags are copied (never `aws:` ones);
  * optionally, copies stay `pending` for --copy-pending-seconds before they become `available`.
It also counts calls per action: GET /_emulator/calls answers {"Action": count, ...}.

Usage: python scripts/emulator.py --port 0 --port-file PATH [--copy-pending-seconds N]
(port 0 picks a free loopback port; its number is written to PATH once the server listens).
"""

import argparse
import io
import json
import re
import threading
from collections import Counter
from urllib.parse import parse_qs

from moto.ec2.models import ec2_backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

ACCOUNT = "123456789012"  # moto's default account for any access key
REGION_RE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/")


def tag_specifications(params):
    """{resource_type: {key: value}} from TagSpecification.N.ResourceType / .Tag.M.Key / .Tag.M.Value."""
    out = {}
    n = 1
    while f"TagSpecification.{n}.ResourceType" in params:
        rtype = params[f"TagSpecification.{n}.ResourceType"]
        tags = out.setdefault(rtype, {})
        m = 1
        while f"TagSpecification.{n}.Tag.{m}.Key" in params:
            tags[params[f"TagSpecification.{n}.Tag.{m}.Key"]] = params.get(f"TagSpecification.{n}.Tag.{m}.Value", "")
            m += 1
        n += 1
    return out


class Layer:
    def __init__(self, app, pending_seconds):
        self.app = app
        self.pending_seconds = pending_seconds
        self.tokens = {}
        self.calls = Counter()
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/_emulator/calls":
            with self.lock:
                body = json.dumps(dict(self.calls)).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        params = {}
        if target:
            action = target.split(".")[-1]
        else:
            params = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
            action = params.get("Action", "?")
        with self.lock:
            self.calls[action] += 1
        if action == "CopyImage":
            match = REGION_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
            return self.copy_image(environ, start_response, params, match.group(1) if match else "us-east-1")
        return self.app(environ, start_response)

    def copy_image(self, environ, start_response, params, region):
        token = params.get("ClientToken")
        with self.lock:
            cached = self.tokens.get((region, token)) if token else None
        if cached:
            start_response(cached[0], cached[1])
            return [cached[2]]
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers

        body = b"".join(self.app(environ, capture))
        found = re.search(rb"<imageId>(ami-[0-9a-f]+)</imageId>", body)
        if captured["status"].startswith("200") and found:
            self.finish_copy(found.group(1).decode(), params, region)
            if token:
                with self.lock:
                    self.tokens[(region, token)] = (captured["status"], captured["headers"], body)
        start_response(captured["status"], captured["headers"])
        return [body]

    def finish_copy(self, image_id, params, region):
        backend = ec2_backends[ACCOUNT][region]
        image = backend.amis[image_id]
        specs = tag_specifications(params)
        image_tags = dict(specs.get("image", {}))
        if params.get("CopyImageTags", "").lower() == "true":
            source = ec2_backends[ACCOUNT][params["SourceRegion"]]
            source_tags = source.tags.get(params["SourceImageId"], {})
            image_tags = {**{k: v for k, v in source_tags.items() if not k.startswith("aws:")}, **image_tags}
        if image_tags:
            backend.create_tags([image_id], image_tags)
        snapshot = getattr(image, "ebs_snapshot", None)
        if snapshot is not None and specs.get("snapshot"):
            backend.create_tags([snapshot.id], specs["snapshot"])
        if self.pending_seconds > 0:
            image.state = "pending"
            timer = threading.Timer(self.pending_seconds, lambda: setattr(image, "state", "available"))
            timer.daemon = True
            timer.start()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    parser.add_argument("--copy-pending-seconds", type=float, default=0.0)
    args = parser.parse_args()
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(args.host, args.port, Layer(app, args.copy_pending_seconds), threaded=True)
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(server.server_port))
        import os

        os.replace(args.port_file + ".tmp", args.port_file)
    print(f"emulator listening on http://{args.host}:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
