"""HTTP API and web page over a gallery (``facemetric serve``).

Endpoints (OpenAPI docs at ``/docs``): ``GET /api/identities``, ``POST /api/enroll`` (form: name,
one or more files, optional max_photos: the pose-spread choice), ``POST /api/verify`` (name, file),
``POST /api/identify`` (file, top_k), ``DELETE /api/identities/{name}``, ``GET /api/health``; the
page at ``/``. Every answer is a model of :mod:`facemetric.gallery.schemas` (its schema in
``/openapi.json``); a refused request answers ``{"detail": "why"}``.

Safety: binds 127.0.0.1 unless told otherwise, and then only with a bearer token; uploads are
read up to the size limit and no further (413 beyond it); images larger than the pixel limit
are refused from their header (413); anything unusable is a 4xx with the reason, and a refused
request writes nothing.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from facemetric.core.embedder import Embedder
from facemetric.core.version import VERSION
from facemetric.gallery.interface import GalleryError, UnknownIdentityError
from facemetric.gallery.location import GalleryLocation
from facemetric.gallery.photos import Photo, PhotoError
from facemetric.gallery.schemas import (
    EnrollResult,
    Health,
    IdentifyAnswer,
    Identity,
    RemoveResult,
    SpreadEnrollResult,
    VerifyAnswer,
)
from facemetric.gallery.service import Gallery
from facemetric.serve.batching import MAX_BATCH, WINDOW, BatchingEmbedder
from facemetric.serve.body_limit import BodyLimit

log = logging.getLogger("facemetric")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
PAGE = Path(__file__).with_name("page.html")


@dataclass(frozen=True)
class ServeOptions:
    gallery: str  # a folder, or a postgresql:// URL
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    max_upload_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 40_000_000
    template: str = "max"
    model: str | None = None  # the gallery's model; a gallery that does not exist yet is created for it
    workers: int | None = None  # face-detection processes (None: one per CPU; 0: no batching, one photo at a time)
    max_batch: int = MAX_BATCH  # crops per model call
    batch_window_ms: float = WINDOW * 1e3  # how long the model waits for more crops when its batch is not full

    @property
    def max_request_bytes(self) -> int:
        """A whole request: up to 4 photos at the upload limit, plus the form's framing."""
        return 4 * self.max_upload_bytes + 65536


def check_binding(options: ServeOptions) -> None:
    """Refuse to listen beyond this machine without a token."""
    if options.host not in LOCAL_HOSTS and not options.token:
        raise GalleryError(
            f"binding {options.host} exposes the gallery to the network: give a bearer token with --token (or "
            "$FACEMETRIC_TOKEN), or bind 127.0.0.1"
        )
    if options.token is not None and len(options.token) < 16:
        raise GalleryError(
            "the token must be at least 16 characters (e.g. python -c 'import secrets; "
            "print(secrets.token_urlsafe(24))')"
        )


class ErrorDetail(BaseModel):
    """A refused request: nothing was written."""

    model_config = ConfigDict(extra="forbid")

    detail: str = Field(description="why the request was refused, and what to do")


class UnusableRequest(BaseModel):
    """A photo that is not an image or has no face (`detail` says which), or a form that FastAPI refused
    (`detail` lists the fields wrong or missing); nothing was written."""

    model_config = ConfigDict(extra="forbid")

    detail: str | list[dict[str, Any]] = Field(
        description="why the request was refused: a sentence, or FastAPI's list of form field errors"
    )


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries of the error answers an endpoint can give (all ``{"detail": ...}``)."""
    why = {
        400: "a bad name or request",
        401: "missing or wrong bearer token",
        404: "the person is not enrolled",
        413: "an upload, request or image over a size or pixel limit",
        422: "not an image, no face found, or a form field missing or invalid",
    }
    return {
        code: {"model": UnusableRequest if code == 422 else ErrorDetail, "description": why[code]} for code in codes
    }


class UploadTooLarge(Exception):
    """An upload bigger than the limit (answered 413)."""


async def _read_limited(upload: UploadFile, limit: int) -> bytes:
    """The upload's bytes, reading at most ``limit`` + 1 of them."""
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise UploadTooLarge(f"{upload.filename or 'upload'}: larger than the {limit:,}-byte limit")
    return data


def open_gallery(options: ServeOptions, embedder: Embedder | None = None) -> Gallery:
    """The gallery to serve (a folder or a ``postgresql://`` URL): opened with its own model (or ``embedder`` /
    ``options.model``, which must be it); a missing gallery is created when a model is named."""
    from facemetric.embedders import load_embedder

    location = GalleryLocation.parse(options.gallery)
    if embedder is None and options.model:
        embedder = load_embedder(options.model)
    if embedder is not None and not location.exists():
        try:
            Gallery.create(location, embedder).close()
        except GalleryError:
            if not location.exists():  # not another server creating it at the same moment
                raise
    gallery = Gallery(location, embedder, template=options.template, max_pixels=options.max_pixels)
    if options.workers != 0:  # concurrent requests: faces cut in worker processes, one model call per batch
        try:
            batching = BatchingEmbedder(
                gallery.embedder, options.workers, options.max_batch, options.batch_window_ms / 1e3
            )
            batching.warm()
        except BaseException:
            gallery.close()
            raise
        gallery.use_embedder(batching)
    return gallery


def create_app(options: ServeOptions, embedder: Embedder | None = None) -> FastAPI:
    """The FastAPI app of one gallery (``embedder`` overrides the gallery's own, e.g. in tests)."""
    gallery = open_gallery(options, embedder)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        try:
            gallery.close()  # on shutdown: a FAISS index saves what changed since its last save
        finally:
            if isinstance(gallery.embedder, BatchingEmbedder):
                gallery.embedder.close()  # the model thread and the detection workers

    app = FastAPI(
        lifespan=lifespan,
        title="facemetric gallery",
        version=VERSION,
        description="Enroll, verify and identify faces; every answer carries score, threshold and FAR.",
    )
    app.state.gallery = gallery

    def authorised(request: Request) -> None:
        if options.token is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), options.token.encode()):
            raise HTTPException(
                401,
                "missing or wrong bearer token (header: Authorization: Bearer <token>)",
                headers={"WWW-Authenticate": "Bearer"},
            )

    guard = [Depends(authorised)]

    app.add_middleware(BodyLimit, limit=options.max_request_bytes)

    @app.exception_handler(UploadTooLarge)
    async def too_large(_: Request, exc: UploadTooLarge) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=413)

    @app.exception_handler(GalleryError)
    async def gallery_error(_: Request, exc: GalleryError) -> JSONResponse:
        if isinstance(exc, UnknownIdentityError):
            status = 404
        elif isinstance(exc, PhotoError):
            status = 413 if exc.too_large else 422  # over a limit / not an image or no face
        else:
            status = 400  # a bad name or request
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return PAGE.read_text(encoding="utf-8")

    @app.get("/api/health")
    def health() -> Health:
        """Whether the server is up, and whether it needs a bearer token."""
        return Health(status="ok", token_required=options.token is not None)

    @app.get("/api/identities", dependencies=guard, responses=_errors(401))
    def identities() -> list[Identity]:
        """Every enrolled person with their number of photos, by name."""
        return gallery.identities()

    @app.post("/api/enroll", dependencies=guard, responses=_errors(400, 401, 413, 422))
    async def enroll(
        name: Annotated[str, Form()],
        files: Annotated[list[UploadFile], File()],
        max_photos: Annotated[int | None, Form(ge=1)] = None,
    ) -> EnrollResult | SpreadEnrollResult:
        """Enrol photos of a person (created if new): all of them or, if any is unusable, none. With
        `max_photos` (webcam frames, a burst): at most that many, spread over the head's pose, the others
        skipped with the reason (no face, too small, blurred, not needed)."""
        photos = [Photo(await _read_limited(f, options.max_upload_bytes), f.filename or "upload") for f in files]
        if max_photos is not None:
            return await _in_thread(gallery.enroll_spread, name, photos, max_photos)
        return await _in_thread(gallery.enroll, name, photos)

    @app.post("/api/verify", dependencies=guard, responses=_errors(400, 401, 404, 413, 422))
    async def verify(name: Annotated[str, Form()], file: Annotated[UploadFile, File()]) -> VerifyAnswer:
        """Is the photo the enrolled person `name`? The score, the threshold, the FAR behind it and the decision."""
        photo = Photo(await _read_limited(file, options.max_upload_bytes), file.filename or "upload")
        return await _in_thread(gallery.verify, name, photo)

    @app.post("/api/identify", dependencies=guard, responses=_errors(400, 401, 413, 422))
    async def identify(file: Annotated[UploadFile, File()], top_k: Annotated[int, Form()] = 5) -> IdentifyAnswer:
        """Who is in the photo among the enrolled, or `no correspondence`? Candidates, score, threshold, FAR."""
        photo = Photo(await _read_limited(file, options.max_upload_bytes), file.filename or "upload")
        return await _in_thread(gallery.identify, photo, top_k)

    @app.delete("/api/identities/{name}", dependencies=guard, responses=_errors(400, 401, 404))
    async def remove(name: str) -> RemoveResult:
        """Delete a person and all their photos."""
        return await _in_thread(gallery.remove, name)

    return app


async def _in_thread(fn: Any, *args: Any) -> Any:
    """Run blocking gallery work (decoding, the model, the database) off the event loop."""
    return await run_in_threadpool(fn, *args)


def run_server(options: ServeOptions) -> None:
    """Check the binding, open the gallery and serve until interrupted."""
    import uvicorn

    check_binding(options)
    app = create_app(options)
    log.info(
        "serving %s on http://%s:%d (page at /, API docs at /docs)%s",
        GalleryLocation.parse(options.gallery),  # a URL's password hidden
        options.host,
        options.port,
        "" if options.token else " without a token (local only)",
    )
    uvicorn.run(app, host=options.host, port=options.port, log_level="warning")
