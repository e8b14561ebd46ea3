"""What an agent meets over MCP (``--mcp``: Gradio's MCP server at ``/gradio_api/mcp/``).

Gradio makes a tool of each public endpoint (``api.py``). Three of its habits do not suit these
tools, and are adapted on the server's own instance when the app starts (``adapt``, through the
app's lifespan: before the first request):

- a file argument's schema is Gradio's FileData record squeezed into a string (``"type":
  "string", "required": ["path", "url", ...]``), and the tool's description sends the agent to
  an ``upload_file_to_gradio`` tool this server does not have. Here a file is a plain string, a
  public http(s) URL or a ``data:`` URL with base64 content, which the endpoint fetches or decodes
  itself within the upload limits (``remote.py``); Gradio's own base64 decoding, which has no
  size limit, is never reached;
- answers are Python reprs (``{'ok': True, 'x': None}``): here JSON text;
- defaults that are false, zero or empty are left out of the schema: here every default is said.
"""

from __future__ import annotations

import inspect
import json
import math
import types
import typing
from typing import Any

from gradio.data_classes import FileData

from ..core.limits import LIMITS
from .links import text_response

FILE_FORMAT = "an http(s) URL of a public file, or a data: URL with its bytes in base64 (data:image/png;base64,...)"


def file_kind(annotation: Any) -> str | None:
    """"many" for a list of files, "one" for a file (maybe optional), None for anything else."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is FileData:
        return "one"
    if origin is list and args and args[0] is FileData:
        return "many"
    if origin in (typing.Union, types.UnionType) and FileData in args:
        return "one"
    if origin in (typing.Union, types.UnionType):          # an optional list of files
        return next((kind for a in args if (kind := file_kind(a)) is not None), None)
    return None


def file_schema(kind: str, description: str) -> dict[str, Any]:
    one = {"type": "string", "description": FILE_FORMAT}
    if kind == "many":
        return {"type": "array", "items": one, "description": description}
    return {**one, "description": f"{description} As {FILE_FORMAT}."}


def clean_schema(schema: dict[str, Any], signature: inspect.Signature) -> dict[str, Any]:
    """A tool's input schema with plain strings for files and every parameter's default."""
    properties = schema.get("properties", {})
    for name, parameter in signature.parameters.items():
        if name not in properties:
            continue
        described = properties[name].get("description", "")
        kind = file_kind(parameter.annotation)
        if kind is not None:
            properties[name] = file_schema(kind, described)
        elif parameter.default not in (inspect.Parameter.empty, None):
            properties[name]["default"] = parameter.default
    return schema


def finite(value: Any) -> Any:
    """``value`` with NaN and infinities as null (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def json_text(value: Any) -> str:
    return json.dumps(finite(value), ensure_ascii=False, allow_nan=False)


def adapt(server: Any) -> None:
    """Adapt Gradio's MCP server instance (``Blocks.mcp_server_obj``) as the module says."""
    gradio_schema, gradio_output = server.get_input_schema, server.postprocess_output_data

    def get_input_schema(tool_name: str, parameters: dict[str, str] | None = None) -> tuple[dict, list]:
        schema, _ = gradio_schema(tool_name, parameters)
        block_fn = server.get_block_fn_from_endpoint_name(server.tool_to_endpoint[tool_name])
        # No FileData positions: Gradio then converts no argument, and drops its upload advice.
        return clean_schema(schema, inspect.signature(block_fn.fn)), []

    def postprocess_output_data(data: Any, root_url: str) -> list:
        if not all(isinstance(output, (dict, list)) for output in data):
            return gradio_output(data, root_url)
        return [server.types.TextContent(type="text", text=json_text(output)) for output in data]

    server.get_input_schema = get_input_schema
    server.postprocess_output_data = postprocess_output_data


MCP_PATH = "/gradio_api/mcp"


def body_limit() -> int:
    """The most an MCP request may send: two files at the upload limit, in base64, and some room
    (a larger file is better sent as a URL, which is streamed to disk)."""
    return LIMITS.upload_bytes * 4 // 3 * 2 + 2**20


class BoundedBodies:
    """ASGI middleware: an MCP request whose body is over ``body_limit`` is answered 413 in words
    before the MCP server reads it (a JSON body is read whole into memory, data: URLs and all)."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or scope.get("method") != "POST" or \
                not scope.get("path", "").startswith(MCP_PATH):
            await self.app(scope, receive, send)
            return
        limit, chunks, size = body_limit(), [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":       # the client went away
                return
            size += len(message.get("body", b""))
            if size > limit:
                await text_response(send, 413, f"This MCP request is over {limit // 2**20} MB, more than this server "
                                               "reads: send large files as http(s) URLs instead of data: URLs.")
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        whole = b"".join(chunks)
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": whole, "more_body": False}
            return await receive()
        await self.app(scope, replay, send)
