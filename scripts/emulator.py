"""Local AWS emulator for the tests and the demo.

moto's server (EC2, SQS, STS over HTTP) behind a thin test-only layer that adds what real AWS does and
moto 5.2.5 does not:
  * CopyImage, in the caller's account (moto maps credentials from STS AssumeRole to the role's account):
    - ClientToken idempotency: the same token in the same account and region answers with the same image;
    - TagSpecifications: tags put on the new image and its snapshot at creation;
    - CopyImageTags: the tags the copying account attached to the source are copied (never `aws:` ones, never
      another account's: a copy made by a target account gets none);
    - SourceImageId and SourceImageRegion on the copy (DescribeImages), as EC2 records them on every copy; an
      image registered or tagged by hand carries none;
    - a source of another account: copied only when it is shared with the caller (launch permission) and so
      are its snapshots (createVolumePermission); otherwise EC2's errors (moto looks in the caller's account only);
    - Encrypted / KmsKeyId: the copy's snapshot is encrypted with the given key (or the account's default EBS
      key, alias/aws/ebs), shown by DescribeSnapshots and in DescribeImages' block device mappings;
    - optionally, copies stay `pending` for --copy-pending-seconds before they become `available`;
  * DescribeImageReferences (moto has none): what uses an image, from references registered with
    POST /_emulator/references {"ami-...": ["ec2:Instance arn:..."]}; an image nobody registered is used by nothing;
  * DisableImage takes every launch permission away, as in EC2 (moto keeps them);
  * DeregisterImage with DeleteAssociatedSnapshots deletes the image's snapshots in the same call (moto ignores
    the flag);
  * EnableImageDeprecation (moto has none): DeprecationTime shown by DescribeImages; a time in the past is refused
    with InvalidParameterValue, as EC2 does;
  * STS AssumeRole of a role whose name ends in `-untrusted` is refused with AccessDenied (a role whose trust
    policy does not name the replicator);
  * DynamoDB's atomic writes: moto reads, changes and stores an item without a lock, so two conditional updates
    at once could both pass and two updates of different attributes could lose one; requests are served one at a
    time;
  * EC2 Image Builder's GetImage (moto has no Image Builder), answered from builds registered with
    POST /_emulator/imagebuilder {"ARN": [{"region", "image", "accountId"}, ...]}.
It also counts calls per action: GET /_emulator/calls answers {"Action": count, ...}; with --throttle-rate R, a
share R of DescribeImages, CopyImage and ModifyImageAttribute calls (seeded, repeatable) is answered with EC2's
RequestLimitExceeded, as a busy account sees in a throttling storm (GET /_emulator/calls counts them as
"Throttled"; POST /_emulator/throttle {"rate": R} changes the share).

Usage: python scripts/emulator.py --port 0 --port-file PATH [--copy-pending-seconds N]
(port 0 picks a free loopback port; its number is written to PATH once the server listens).
"""

import argparse
import datetime
import io
import random
import json
import re
import threading
from collections import Counter
from urllib.parse import parse_qs, urlencode

from moto.ec2.exceptions import EC2ClientError, InvalidAMIIdError
from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import Ami, AmiBackend, random_ami_id
from moto.iam.models import get_account_id_from
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

REGION_RE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/")
ACCESS_KEY_RE = re.compile(r"Credential=([^/]+)/")


def moto_copy_image(self, source_image_id, source_region, name=None, description=None):
    """moto's CopyImage, but as EC2 does it across accounts: the source may be another account's image when it
    is shared with the caller, and so are its snapshots."""
    source_backend = ec2_backends[self.account_id][source_region]
    source_ami = source_backend.amis.get(source_image_id)
    if source_ami is None:
        for account_id in list(ec2_backends.keys()):
            candidate = ec2_backends[account_id][source_region].amis.get(source_image_id)
            if candidate is not None:
                source_ami = candidate
                break
        if source_ami is None:
            raise InvalidAMIIdError(source_image_id)
        launchable = source_ami.is_public or {"UserId": self.account_id} in source_ami.launch_permissions
        if not launchable:
            raise InvalidAMIIdError(source_image_id)
        snapshot = getattr(source_ami, "ebs_snapshot", None)
        if snapshot is not None and self.account_id not in snapshot.create_volume_permission_userids:
            raise EC2ClientError("AuthFailure", "You do not have permission to access the storage of this ami")
    ami_id = random_ami_id()
    ami = Ami(self, ami_id, instance=None, source_ami=source_ami, name=name, description=description)
    self.amis[ami_id] = ami
    return ami


AmiBackend.copy_image = moto_copy_image
# EC2's record of the image an AMI was made from: none unless CopyImage set it (Layer.finish_copy).
Ami.source_image_id = None
Ami.source_image_region = None
# Set by EnableImageDeprecation (Layer.enable_deprecation); moto has none.
Ami.deprecation_time = None


def caller_account(environ):
    """The account whose credentials signed the request (moto maps STS-issued keys to the role's account)."""
    match = ACCESS_KEY_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
    return get_account_id_from(match.group(1)) if match else "123456789012"


def respond(start_response, status, body, content_type="application/json"):
    body = body.encode() if isinstance(body, str) else body
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def error(start_response, code, message, status="400 Bad Request"):
    body = (
        f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
        "<RequestID>r</RequestID></Response>"
    )
    return respond(start_response, status, body, "text/xml")


# The calls a throttling storm answers with RequestLimitExceeded (--throttle-rate).
THROTTLED_ACTIONS = {"DescribeImages", "CopyImage", "ModifyImageAttribute"}


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
    def __init__(self, app, pending_seconds, throttle_rate=0.0):
        self.app = app
        self.pending_seconds = pending_seconds
        self.throttle_rate = throttle_rate
        self.random = random.Random(28)
        self.tokens = {}
        self.calls = Counter()
        self.builds = {}
        self.references = {}
        self.lock = threading.Lock()
        self.dynamodb = threading.Lock()

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        if path == "/_emulator/calls":
            with self.lock:
                return respond(start_response, "200 OK", json.dumps(dict(self.calls)))
        if path == "/_emulator/imagebuilder":
            with self.lock:
                self.builds.update(json.loads(raw or b"{}"))
            return respond(start_response, "200 OK", "{}")
        if path == "/_emulator/throttle":
            with self.lock:
                self.throttle_rate = float(json.loads(raw or b"{}").get("rate", 0.0))
            return respond(start_response, "200 OK", "{}")
        if path == "/_emulator/references":
            with self.lock:
                self.references.update(json.loads(raw or b"{}"))
            return respond(start_response, "200 OK", "{}")
        if path == "/GetImage":
            with self.lock:
                self.calls["GetImage"] += 1
            return self.get_image(environ, start_response)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        params = {}
        if target:
            action = target.split(".")[-1]
        else:
            params = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
            action = params.get("Action", "?")
        with self.lock:
            self.calls[action] += 1
            throttled = action in THROTTLED_ACTIONS and self.random.random() < self.throttle_rate
            if throttled:
                self.calls["Throttled"] += 1
        if throttled:
            return error(start_response, "RequestLimitExceeded", "Request limit exceeded.", "503 Service Unavailable")
        if action == "AssumeRole" and params.get("RoleArn", "").endswith("-untrusted"):
            body = (
                '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
                "<Code>AccessDenied</Code><Message>User: arn:aws:sts::123456789012:assumed-role/replicator is not "
                f"authorized to perform: sts:AssumeRole on resource: {params['RoleArn']}</Message></Error>"
                "<RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ErrorResponse>"
            )
            return respond(start_response, "403 Forbidden", body, "text/xml")
        if action == "ModifySnapshotAttribute" and "CreateVolumePermission.Add.1.UserId" in params:
            # EC2 takes CreateVolumePermission.Add.N.UserId (what the SDK sends) as well as OperationType and
            # UserId.N; moto reads only the latter.
            users = [v for k, v in sorted(params.items()) if re.fullmatch(r"CreateVolumePermission\.Add\.\d+\.UserId", k)]
            rewritten = {k: v for k, v in params.items() if not k.startswith("CreateVolumePermission.")}
            rewritten.update({"OperationType": "add", **{f"UserId.{i + 1}": u for i, u in enumerate(users)}})
            body = urlencode(rewritten).encode()
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        if action == "DescribeImageReferences":
            return self.image_references(start_response, params)
        if action == "DeregisterImage" and params.get("DeleteAssociatedSnapshots", "").lower() == "true":
            match = REGION_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
            region = match.group(1) if match else "us-east-1"
            return self.deregister_with_snapshots(environ, start_response, params, caller_account(environ), region)
        if action == "EnableImageDeprecation":
            match = REGION_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
            region = match.group(1) if match else "us-east-1"
            return self.enable_deprecation(start_response, params, caller_account(environ), region)
        if action == "CopyImage":
            match = REGION_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
            return self.copy_image(environ, start_response, params, match.group(1) if match else "us-east-1")
        if target.startswith("DynamoDB_"):
            # DynamoDB applies each write to an item atomically (a conditional UpdateItem, concurrent updates of
            # different attributes); moto reads, changes and stores the item without a lock: one request at a time.
            with self.dynamodb:
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)

    def image_references(self, start_response, params):
        ids = [v for k, v in sorted(params.items()) if re.fullmatch(r"ImageId\.\d+", k)]
        items = []
        with self.lock:
            for image_id in ids:
                for reference in self.references.get(image_id, []):
                    kind, _, arn = reference.partition(" ")
                    items.append(
                        f"<item><imageId>{image_id}</imageId><resourceType>{kind}</resourceType><arn>{arn}</arn></item>"
                    )
        body = (
            '<DescribeImageReferencesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
            f"<requestId>r</requestId><imageReferenceSet>{''.join(items)}</imageReferenceSet>"
            "</DescribeImageReferencesResponse>"
        )
        return respond(start_response, "200 OK", body, "text/xml")

    def deregister_with_snapshots(self, environ, start_response, params, account, region):
        backend = ec2_backends[account][region]
        image = backend.amis.get(params.get("ImageId", ""))
        snapshot = getattr(image, "ebs_snapshot", None) if image is not None else None
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers

        body = b"".join(self.app(environ, capture))
        if captured["status"].startswith("200") and snapshot is not None:
            backend.delete_snapshot(snapshot.id)
        start_response(captured["status"], captured["headers"])
        return [body]

    def enable_deprecation(self, start_response, params, account, region):
        image_id, at = params.get("ImageId", ""), params.get("DeprecateAt", "")
        try:
            when = datetime.datetime.fromisoformat(at)
        except ValueError:
            when = None
        if when is None or when < datetime.datetime.now(datetime.timezone.utc):
            return error(start_response, "InvalidParameterValue", f"The deprecation time {at} cannot be in the past.")
        image = ec2_backends[account][region].amis.get(image_id)
        if image is None:
            return error(start_response, "InvalidAMIID.NotFound", f"The image id '[{image_id}]' does not exist")
        image.deprecation_time = at
        body = (
            '<EnableImageDeprecationResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
            "<requestId>r</requestId><return>true</return></EnableImageDeprecationResponse>"
        )
        return respond(start_response, "200 OK", body, "text/xml")

    def get_image(self, environ, start_response):
        arn = parse_qs(environ.get("QUERY_STRING", "")).get("imageBuildVersionArn", [""])[0]
        with self.lock:
            amis = self.builds.get(arn)
        if amis is None:
            body = json.dumps({"__type": "ResourceNotFoundException", "message": f"Image {arn} not found"})
            return respond(start_response, "404 Not Found", body)
        body = {"requestId": "r", "image": {"arn": arn, "state": {"status": "AVAILABLE"}, "outputResources": {"amis": amis}}}
        return respond(start_response, "200 OK", json.dumps(body))

    def copy_image(self, environ, start_response, params, region):
        token = params.get("ClientToken")
        account = caller_account(environ)
        with self.lock:
            cached = self.tokens.get((account, region, token)) if token else None
        if cached:
            start_response(cached[0], cached[1])
            return [cached[2]]
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers

        body = b"".join(self.app(environ, capture))
        found = re.search(rb"<imageId>(ami-[0-9a-f]+)</imageId>", body)
        if captured["status"].startswith("200") and found:
            self.finish_copy(found.group(1).decode(), params, account, region)
            if token:
                with self.lock:
                    self.tokens[(account, region, token)] = (captured["status"], captured["headers"], body)
        start_response(captured["status"], captured["headers"])
        return [body]

    def finish_copy(self, image_id, params, account, region):
        backend = ec2_backends[account][region]
        image = backend.amis[image_id]
        specs = tag_specifications(params)
        image.source_image_id = params["SourceImageId"]
        image.source_image_region = params["SourceRegion"]
        image_tags = dict(specs.get("image", {}))
        if params.get("CopyImageTags", "").lower() == "true":
            # Only the tags the copying account attached: moto keeps tags per account, so a target account's
            # copy of another account's source gets none, as in EC2.
            source = ec2_backends[account][params["SourceRegion"]]
            source_tags = source.tags.get(params["SourceImageId"], {})
            image_tags = {**{k: v for k, v in source_tags.items() if not k.startswith("aws:")}, **image_tags}
        if image_tags:
            backend.create_tags([image_id], image_tags)
        snapshot = getattr(image, "ebs_snapshot", None)
        if snapshot is not None and params.get("Encrypted", "").lower() == "true":
            snapshot.encrypted = True
            snapshot.kms_key_id = params.get("KmsKeyId") or f"arn:aws:kms:{region}:{account}:alias/aws/ebs"
        if snapshot is not None and specs.get("snapshot"):
            backend.create_tags([snapshot.id], specs["snapshot"])
        if self.pending_seconds > 0:
            image.state = "pending"
            timer = threading.Timer(self.pending_seconds, lambda: setattr(image, "state", "available"))
            timer.daemon = True
            timer.start()


def block_device_mappings(self):
    """moto's mappings, with the snapshot's encryption (moto leaves it out)."""
    mappings = ORIGINAL_MAPPINGS.fget(self)
    for mapping in mappings:
        if getattr(self.ebs_snapshot, "encrypted", False):
            mapping["Ebs"]["Encrypted"] = True
            mapping["Ebs"]["KmsKeyId"] = self.ebs_snapshot.kms_key_id
    return mappings


ORIGINAL_MAPPINGS = Ami.block_device_mappings
Ami.block_device_mappings = property(block_device_mappings)


def disable_image(self, ami_id):
    """DisableImage as EC2 does it: a disabled AMI loses every launch permission (EnableImage gives none back)."""
    ORIGINAL_DISABLE(self, ami_id)
    self.amis[ami_id].launch_permissions = []


ORIGINAL_DISABLE = AmiBackend.disable_image
AmiBackend.disable_image = disable_image


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    parser.add_argument("--copy-pending-seconds", type=float, default=0.0)
    parser.add_argument("--throttle-rate", type=float, default=0.0)
    args = parser.parse_args()
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(args.host, args.port, Layer(app, args.copy_pending_seconds, args.throttle_rate), threaded=True)
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(server.server_port))
        import os

        os.replace(args.port_file + ".tmp", args.port_file)
    print(f"emulator listening on http://{args.host}:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
