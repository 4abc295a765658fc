"""``dualgait keys``: CURVE key pairs and the allow-list (docs/security.md).

    dualgait keys generate --name NAME [--dir DIR]   NAME.key (public) + NAME.key_secret (mode 600) in DIR
    dualgait keys allow KEY_FILE [--dir DIR]          copy the public key of KEY_FILE into DIR/allowed/
    dualgait keys list [--dir DIR]                    this folder's key pairs and the allow-list
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from core.configtools import ConfigError, expand_env
from core.security import SecurityConfig, fingerprint, generate_key_pair, read_public_key

log = logging.getLogger(__name__)


def _default_dir() -> str:
    return os.path.expanduser(expand_env(SecurityConfig().keys_dir))


def add_keys_args(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="keys", required=True)
    gen = sub.add_parser("generate", help="a new key pair: NAME.key (public, share it) + NAME.key_secret (keep it)")
    gen.add_argument("--name", default="host", help="file name of the pair (default: host, security.key_name)")
    allow = sub.add_parser("allow", help="admit a client: copy the public key of KEY_FILE into DIR/allowed/")
    allow.add_argument("key_file", help="a .key file (a .key_secret works too: only its public key is copied)")
    allow.add_argument("--as", dest="as_name", help="name in the allow-list (default: KEY_FILE's name)")
    lst = sub.add_parser("list", help="key pairs and allowed clients in DIR (fingerprints only)")
    for p in (gen, allow, lst):
        p.add_argument("--dir", default=None, help=f"keys folder (default: security.keys_dir, {_default_dir()})")
        p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def run_keys(args: argparse.Namespace) -> int:
    keys_dir = Path(os.path.expanduser(args.dir)) if args.dir else Path(_default_dir())
    if args.keys == "generate":
        public, secret = generate_key_pair(keys_dir, args.name)
        print(f"public key (share it: the allow-list of servers this host connects to, security.server_keys of "
              f"clients that connect to it): {public}")
        print(f"secret key (keep it on this host, mode 600): {secret}")
        print(f"fingerprint {fingerprint(read_public_key(public))}")
        return 0
    if args.keys == "allow":
        source = Path(args.key_file)
        key = read_public_key(source)
        name = args.as_name or source.name.removesuffix("_secret").removesuffix(".key")
        if not name or "/" in name:
            raise ConfigError(f"--as {name!r}: not a file name")
        allowed = keys_dir / "allowed"
        allowed.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = allowed / f"{name}.key"
        if target.exists() and read_public_key(target) != key:
            raise ConfigError(f"{target} exists with another key: choose another name with --as")
        target.write_text(f"# allowed by 'dualgait keys allow {source.name}'\ncurve\n"
                          f"    public-key = \"{key.decode('ascii')}\"\n", encoding="utf-8")
        print(f"allowed {fingerprint(key)}... as {target}")
        return 0
    for folder in (keys_dir, keys_dir / "allowed"):
        files = sorted(folder.glob("*.key")) if folder.is_dir() else []
        print(f"{folder}: {len(files)} public key(s)")
        for path in files:
            secret = path.with_name(path.name + "_secret").exists()
            print(f"  {path.name:30s} {fingerprint(read_public_key(path))}...{'  (+ secret key)' if secret else ''}")
    return 0
