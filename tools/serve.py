#!/usr/bin/env python3
"""Serves the demo on 127.0.0.1: www/ at /, the wasm package at /pkg/, and for the benchmark page
onnxruntime-web's dist/ (from node_modules, after `npm ci`) at /vendor/onnxruntime-web/ (or, with
--dir, one folder such as dist/ as it is).

Only loopback; no caching, so a rebuild shows on reload. Extra response headers (for the CSP
tests) can be given with --header 'Name: value'.
"""
import argparse
import http.server
import os
import posixpath
import urllib.parse

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=8080)
parser.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
parser.add_argument("--header", action="append", default=[])
parser.add_argument("--dir", help="serve this folder at / instead of www/ + pkg/")
args = parser.parse_args()

WWW = os.path.join(args.root, "www")
PKG = os.path.join(args.root, "pkg")
ORT = os.path.join(args.root, "node_modules", "onnxruntime-web", "dist")
EXTRA = [h.split(":", 1) for h in args.header]


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".json": "application/json",
        ".safetensors": "application/octet-stream",
        ".onnx": "application/octet-stream",
    }

    def translate_path(self, path):
        path = urllib.parse.unquote(urllib.parse.urlsplit(path).path)
        path = posixpath.normpath(path)
        parts = [p for p in path.split("/") if p and p not in (".", "..")]
        if args.dir:
            return os.path.join(os.path.abspath(args.dir), *parts)
        if parts and parts[0] == "pkg":
            return os.path.join(PKG, *parts[1:])
        if parts[:2] == ["vendor", "onnxruntime-web"]:
            return os.path.join(ORT, *parts[2:])
        return os.path.join(WWW, *parts)

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        for name, value in EXTRA:
            self.send_header(name.strip(), value.strip())
        super().end_headers()

    def log_message(self, fmt, *a):
        if os.environ.get("SCOREFIELD_SERVE_QUIET") != "1":
            super().log_message(fmt, *a)


http.server.ThreadingHTTPServer.allow_reuse_address = True
server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
print(f"serving http://127.0.0.1:{args.port}/ ({args.dir or 'www/ and pkg/'})", flush=True)
server.serve_forever()
