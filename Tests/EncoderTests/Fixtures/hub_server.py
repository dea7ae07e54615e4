#!/usr/bin/env python3
"""A tiny stand-in for the Hugging Face Hub's file endpoints, for HubClient tests (stdlib only).

Usage: python3 hub_server.py MANIFEST.json LOG.jsonl
MANIFEST: {"repo": "owner/name", "commit": "<40 hex>", "tags": ["v1"], "require_token": null | "secret",
           "files": {"path": "text content"}, "redirect": ["files served via a cross-host CDN redirect"]}
Serves HEAD/GET /<repo>/resolve/<revision>/<path> with X-Repo-Commit and ETag (X-Linked-Etag/-Size and a
302 to http://localhost:<port>/cdn/<sha256> for "redirect" files), honours "Range: bytes=N-", answers
404s with X-Error-Code like the Hub, and appends one JSON line per request to LOG. Prints the port, then
serves until killed.
"""
import hashlib
import json
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

manifest = json.load(open(sys.argv[1]))
log_path = sys.argv[2]
files = {name: text.encode("utf-8") for name, text in manifest["files"].items()}
blobs = {hashlib.sha256(data).hexdigest(): data for data in files.values()}
commit = manifest["commit"]
revisions = {"main", commit, *manifest.get("tags", [])}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def record(self):
        with open(log_path, "a") as f:
            f.write(json.dumps({"method": self.command, "path": self.path, "range": self.headers.get("Range"),
                                "authorization": self.headers.get("Authorization")}) + "\n")

    def reply(self, status, headers, body=b""):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)) if "Content-Length" not in headers else headers["Content-Length"])
        self.end_headers()
        if self.command == "GET" and body:
            self.wfile.write(body)

    def serve_bytes(self, data, extra):
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= len(data):
                return self.reply(416, {"Content-Range": "bytes */%d" % len(data)})
            extra = dict(extra, **{"Content-Range": "bytes %d-%d/%d" % (start, len(data) - 1, len(data))})
            return self.reply(206, extra, data[start:])
        return self.reply(200, extra, data)

    def handle_any(self):
        self.record()
        path = urllib.parse.unquote(self.path)
        if path.startswith("/cdn/"):
            data = blobs.get(path[5:])
            return self.serve_bytes(data, {}) if data is not None else self.reply(404, {})
        token = manifest.get("require_token")
        if token and self.headers.get("Authorization") != "Bearer " + token:
            return self.reply(401, {"X-Error-Code": "GatedRepo"})
        repo = manifest["repo"]
        prefix = "/" + repo + "/resolve/"
        if not path.startswith(prefix):
            return self.reply(404, {"X-Error-Code": "RepositoryNotFound"})
        revision, _, name = path[len(prefix):].partition("/")
        if revision not in revisions:
            return self.reply(404, {"X-Error-Code": "RevisionNotFound"})
        data = files.get(name)
        if data is None:
            return self.reply(404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit})
        sha = hashlib.sha256(data).hexdigest()
        if name in manifest.get("redirect", []):
            host = "localhost:%d" % self.server.server_address[1]
            return self.reply(302, {"Location": "http://%s/cdn/%s" % (host, sha), "X-Repo-Commit": commit,
                                    "X-Linked-Etag": '"%s"' % sha, "X-Linked-Size": str(len(data))})
        return self.serve_bytes(data, {"X-Repo-Commit": commit, "ETag": 'W/"%s"' % sha})

    do_GET = handle_any
    do_HEAD = handle_any


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
