"""`dalil serve`: the HTTP API and page on this machine (uvicorn, `--workers N` processes) or on Ray
Serve over shards (api/ray_serve.py)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from dalil.api.cli.common import (
    EXIT_OK,
    CliError,
    UsageError,
    counted,
    port_number,
    positive_int,
    ray_build_module,
)


def cmd_serve(args: argparse.Namespace) -> int:
    import os

    import uvicorn
    from dalil.indexer.encoders.engines import EXACT_QUERIES_ENV
    from dalil.indexer.store import IndexReader, Vocabulary

    reader = IndexReader.open(Path(args.index))  # a missing or damaged index fails here, clearly,
    try:  # not in each server process after "serving" was announced
        Vocabulary.open(reader.path, reader.manifest.get("vocabulary"))
    finally:
        reader.close()
    if args.ray:
        return _serve_on_cluster(args)
    if args.shards != 1 or args.replicas != 1 or args.max_replicas:
        raise UsageError("--shards, --replicas and --max-replicas serve on Ray: add --ray ADDRESS")
    # Each worker process opens the index itself through the factory (read from the environment).
    os.environ["DALIL_INDEX"] = str(Path(args.index).resolve())
    os.environ["DALIL_CORS_ORIGINS"] = args.cors_origins or ""
    _use_source_names(args)
    logging.getLogger("dalil.access").setLevel(logging.INFO)  # one line per request
    _use_write_token_file(args)
    if args.exact_queries:  # read by each worker's engine (indexer/encoders/engines.py)
        os.environ[EXACT_QUERIES_ENV] = "1"
    port = _free_to_listen(args.host, args.port)
    print(
        f"dalil: serving {args.index} on http://{args.host}:{port}/ ({counted(args.workers, 'worker')})",
        file=sys.stderr,
    )
    try:
        uvicorn.run(
            "dalil.api.app:create_app_from_env",
            factory=True,
            host=args.host,
            port=port,
            workers=args.workers,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=10,
        )
    except SystemExit as exc:  # uvicorn exits 3 when it could not start; 3 means "skipped" here
        if exc.code not in (0, None):
            raise CliError("the server did not start (the reason is logged above)") from None
    return EXIT_OK


def _use_source_names(args: argparse.Namespace) -> None:
    """Hand --source-names to the server processes, checked here first (a bad file is refused before
    "serving" is announced, not in each worker)."""
    from dalil.api.wording import SourceNames

    if args.source_names:
        try:
            SourceNames.from_file(args.source_names)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        os.environ["DALIL_SOURCE_NAMES"] = str(Path(args.source_names).resolve())


def _use_write_token_file(args: argparse.Namespace) -> None:
    """Hand --write-token-file to the server processes; one that cannot give a token is refused now,
    not turned into a silently read-only server."""
    if not args.write_token_file:
        return
    from dalil.api.app import token_from_file

    path = Path(args.write_token_file)
    try:
        token_from_file(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(
            f"cannot read the write token file {path}: {getattr(exc, 'strerror', None) or exc}"
        ) from exc
    except ValueError as exc:  # empty
        raise CliError(str(exc)) from exc
    os.environ["DALIL_WRITE_TOKEN_FILE"] = str(path.resolve())


def _free_to_listen(host: str, port: int) -> int:
    """The port to serve on, checked before anything is announced; port 0 becomes a free one."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(f"--host {host}: not an address of this machine ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        return probe.getsockname()[1]


def _serve_on_cluster(args: argparse.Namespace) -> int:
    """`dalil serve --ray ADDRESS --shards N`: the same API on Ray Serve, the index in N shards."""

    ray_build = ray_build_module()
    from dalil.api import ray_serve
    from dalil.api.app import read_write_token
    from dalil.indexer.shard_split import ensure_shards
    from dalil.indexer.store import index_metadata

    index = Path(args.index).resolve()
    _use_write_token_file(args)
    try:
        ray_build.connect(args.ray)  # an unreachable cluster is said before anything is split
        roots = ensure_shards(index, args.shards, progress=True)
        settings = ray_serve.ClusterSettings(
            shard_roots=tuple(str(p) for p in roots),
            replicas=args.replicas,
            max_replicas=args.max_replicas,
            cors_origins=tuple(o for o in (args.cors_origins or "").split(",") if o),
            write_token=read_write_token(),
        )
        print(
            f"dalil: serving {args.index} in {args.shards} shard(s) on Ray Serve at http://{args.host}:{args.port}/",
            file=sys.stderr,
        )
        ray_serve.run(settings, index_metadata(roots[0])["encoder"], args.host, args.port)
    except ray_build.ClusterError as exc:
        raise CliError(str(exc)) from exc
    finally:
        ray_build.disconnect()
    return EXIT_OK


def add_commands(sub, index_dir: str) -> None:
    """This group's subcommands, on the `dalil` parser."""
    p = sub.add_parser("serve", help="run the HTTP API")
    p.add_argument("--index", default=index_dir, help=f"index directory (default: {index_dir})")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; 0.0.0.0: every interface)",
    )
    p.add_argument(
        "--port", type=port_number, default=8000, help="port to listen on (default 8000; 0: any free port)"
    )
    p.add_argument(
        "--workers", type=positive_int, default=1, help="server processes (each holds the index and model)"
    )
    p.add_argument("--cors-origins", default="", help="comma-separated origins allowed to call the API")
    p.add_argument(
        "--source-names",
        metavar="FILE",
        help="a JSON object {source id: name} the page shows sources by (default: each id's last part)",
    )
    p.add_argument(
        "--write-token-file",
        help="allow writes with the token in this file (or set DALIL_WRITE_TOKEN); read-only otherwise",
    )
    p.add_argument(
        "--exact-queries",
        action="store_true",
        help="embed every question with the fp32 engine (default: Arabic questions by its int8 twin, "
        "a third of the time; or set DALIL_EXACT_QUERIES=1)",
    )
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        default=None,
        help="serve on Ray Serve: local (start a cluster here), auto, HOST:PORT or ray://HOST:PORT",
    )
    p.add_argument(
        "--shards",
        type=positive_int,
        default=1,
        help="with --ray: split the index into this many shards by article id (once, under the index)",
    )
    p.add_argument("--replicas", type=positive_int, default=1, help="with --ray: replicas of each deployment")
    p.add_argument(
        "--max-replicas",
        type=positive_int,
        default=None,
        help="with --ray: autoscale up to this many replicas",
    )
    p.set_defaults(func=cmd_serve)
