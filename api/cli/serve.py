"""``wajah serve``: run the HTTP service with uvicorn (registered in ``api/cli/main.py``)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from wajah.api.cli.support import emit_json, stderr_console


def serve(
    host: Annotated[
        str | None, typer.Option("--host", help="Interface to bind (default: settings.host).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="TCP port (default: settings.port).")
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the listening address as one JSON document.")
    ] = False,
) -> None:
    """Run the HTTP API (JSON logs on stderr). The first start writes an admin key to
    <data_dir>/keys/admin.key."""
    import uvicorn

    from wajah.api.http.app import admin_key_path, create_app
    from wajah.api.logs import configure_logging
    from wajah.api.settings import Settings

    settings = Settings()
    bind_host = host or settings.host
    bind_port = port if port is not None else settings.port
    configure_logging()
    address = {
        "url": f"http://{bind_host}:{bind_port}",
        "data_dir": str(settings.data_dir),
        "admin_key_file": str(admin_key_path(settings)),
    }
    if json_output:
        emit_json(address)
    else:
        stderr_console.print(
            json.dumps({"event": "serving", **address}),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    uvicorn.run(
        create_app(settings),
        host=bind_host,
        port=bind_port,
        # uvicorn's access log prints the raw query string, which can hold a searched name;
        # the app writes its own access line (route template, status, request id) instead.
        access_log=False,
        log_config=None,
        proxy_headers=False,
    )
