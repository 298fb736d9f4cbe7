"""The HTTP API: answers, and a clear 4xx that writes nothing for every kind of bad request."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gallery_fakes import ColourEmbedder, person_photo

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from facemetric.gallery.interface import GalleryError  # noqa: E402
from facemetric.gallery.photos import Photo  # noqa: E402
from facemetric.gallery.schemas import (  # noqa: E402
    EnrollResult,
    Health,
    IdentifyAnswer,
    Identity,
    RemoveResult,
    SpreadEnrollResult,
    VerifyAnswer,
)
from facemetric.gallery.service import Gallery  # noqa: E402
from facemetric.serve.app import ServeOptions, check_binding, create_app  # noqa: E402

TOKEN = "s3cret-token-for-tests"


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    folder = tmp_path / "gallery"
    g = Gallery.create(folder, ColourEmbedder())
    for person in range(4):
        g.enroll(f"person {person}", [Photo(person_photo(person, 0), "seed.png")])
    vectors = [g.embed(Photo(person_photo(p, s), "c"))[0] for p in range(4) for s in range(1, 6)]
    g.calibrate(np.array(vectors), [f"person {p}" for p in range(4) for _ in range(1, 6)], 0.1, "test")
    g.close()
    options = ServeOptions(str(folder), token=TOKEN, max_upload_bytes=200_000, max_pixels=2_000_000)
    app = create_app(options, ColourEmbedder())
    return TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"})


def _state(client: TestClient) -> tuple[int, list]:
    gallery = client.app.state.gallery
    return gallery.store.generation, gallery.identities()


def test_enroll_verify_identify_remove(client: TestClient) -> None:
    files = [
        ("files", ("a.png", person_photo(9, 0), "image/png")),
        ("files", ("b.png", person_photo(9, 1), "image/png")),
    ]
    done = client.post("/api/enroll", data={"name": "Grace Hopper"}, files=files)
    assert done.status_code == 200 and done.json() == {"name": "Grace Hopper", "added": 2, "duplicates": 0}
    # a burst of frames: at most max_photos kept (spread over pose; these fakes have none: the sharpest first)
    burst = [("files", (f"f{k}.png", person_photo(10, k), "image/png")) for k in range(4)]
    spread = client.post("/api/enroll", data={"name": "Alan Turing", "max_photos": "2"}, files=burst).json()
    assert spread["added"] == 2 and len(spread["kept"]) == 2 and len(spread["skipped"]) == 2
    assert all(s["reason"].startswith("not needed") for s in spread["skipped"])
    assert client.post("/api/enroll", data={"name": "Alan Turing", "max_photos": "0"}, files=burst).status_code == 422
    client.delete("/api/identities/Alan Turing")
    verify = client.post("/api/verify", data={"name": "Grace Hopper"}, files={"file": ("p.png", person_photo(9, 4))})
    body = verify.json()
    assert verify.status_code == 200 and body["accepted"] is True and body["threshold"] is not None
    assert {"score", "target_far", "far_at_score", "calibrated_on"} <= body.keys()
    assert body.keys() == VerifyAnswer.model_fields.keys()  # every field, null where it does not apply
    assert body["warning"] is None and body["note"] is None and body["detection"]["backend"] == "colour"
    assert VerifyAnswer.model_validate(body).name == "Grace Hopper"
    who = client.post("/api/identify", data={"top_k": "2"}, files={"file": ("p.png", person_photo(9, 5))}).json()
    assert who["identity"] == "Grace Hopper" and len(who["candidates"]) == 2
    assert IdentifyAnswer.model_validate(who).candidates[0].name == "Grace Hopper"
    listed = client.get("/api/identities").json()
    names = [Identity.model_validate(p).name for p in listed]
    assert names == ["Grace Hopper", "person 0", "person 1", "person 2", "person 3"]
    assert listed[0]["images"] == 2 and isinstance(listed[0]["created"], float)
    EnrollResult.model_validate(done.json())
    assert client.delete("/api/identities/Grace Hopper").json() == {"name": "Grace Hopper", "removed_images": 2}
    assert Health.model_validate(client.get("/api/health").json()) == Health(status="ok", token_required=True)
    assert client.get("/").status_code == 200 and "facemetric gallery" in client.get("/").text
    assert client.get("/openapi.json").json()["info"]["title"] == "facemetric gallery"


def test_openapi_has_a_response_schema_per_endpoint(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    expected = {
        ("get", "/api/health"): Health,
        ("get", "/api/identities"): Identity,
        ("post", "/api/enroll"): EnrollResult,
        ("post", "/api/verify"): VerifyAnswer,
        ("post", "/api/identify"): IdentifyAnswer,
        ("delete", "/api/identities/{name}"): RemoveResult,
    }
    operations = {(method, path) for path, ops in spec["paths"].items() for method in ops}
    assert operations == set(expected)
    for (method, path), model in expected.items():
        schema = spec["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
        if model is Identity:  # a list of people
            assert schema["type"] == "array"
            schema = schema["items"]
        models = [model]
        if model is EnrollResult:  # with max_photos, the pose-spread answer (kept and skipped photos)
            models.append(SpreadEnrollResult)
            assert schema["anyOf"] == [{"$ref": f"#/components/schemas/{m.__name__}"} for m in models], schema
        else:
            assert schema == {"$ref": f"#/components/schemas/{model.__name__}"}, (method, path, schema)
        for m in models:
            component = schemas[m.__name__]
            assert set(component["properties"]) == set(m.model_fields), m  # the model, field for field
            assert set(component["required"]) == set(m.model_fields)  # always in the JSON (maybe null)
            assert all(p.get("description") for p in component["properties"].values()), m
        if path != "/api/health":  # errors: {"detail": ...}
            assert spec["paths"][path][method]["responses"]["401"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorDetail"
            }
    assert schemas["VerifyAnswer"]["properties"]["detection"]["$ref"] == "#/components/schemas/FaceDetection"
    assert schemas["IdentifyAnswer"]["properties"]["candidates"]["items"] == {"$ref": "#/components/schemas/Candidate"}


def test_bad_requests_get_a_clear_4xx_and_write_nothing(client: TestClient) -> None:
    before = _state(client)
    flat = _png(np.full((64, 64, 3), 128, np.uint8))
    huge_pixels = _png(np.zeros((2000, 1500), np.uint8))  # 3 MP of zeros: a small file, too many pixels
    cases = [
        (
            "non-image upload",
            "/api/enroll",
            {"name": "x"},
            {"files": ("a.png", b"%PDF-1.4 not an image")},
            422,
            "not an image",
        ),
        (
            "oversized upload",
            "/api/enroll",
            {"name": "x"},
            {"files": ("a.png", b"\x89PNG" + b"0" * 300_000)},
            413,
            "limit",
        ),
        ("decompression bomb", "/api/enroll", {"name": "x"}, {"files": ("a.png", huge_pixels)}, 413, "allowed"),
        ("no face", "/api/enroll", {"name": "x"}, {"files": ("a.png", flat)}, 422, "no face"),
        (
            "unknown identity",
            "/api/verify",
            {"name": "nobody"},
            {"file": ("a.png", person_photo(1, 1))},
            404,
            "not enrolled",
        ),
        (
            "path-like name",
            "/api/enroll",
            {"name": "../x"},
            {"files": ("a.png", person_photo(1, 1))},
            400,
            "not allowed",
        ),
        (
            "path-like name 2",
            "/api/enroll",
            {"name": "a/b"},
            {"files": ("a.png", person_photo(1, 1))},
            400,
            "not allowed",
        ),
        (
            "reserved name",
            "/api/enroll",
            {"name": "no correspondence"},
            {"files": ("a.png", person_photo(1, 1))},
            400,
            "reserved",
        ),
    ]
    for what, url, data, files, status, message in cases:
        response = client.post(url, data=data, files=files)
        assert response.status_code == status, (what, response.status_code, response.text)
        assert message in response.json()["detail"], (what, response.json())
        assert response.json().keys() == {"detail"}, (what, response.json())
    assert client.delete("/api/identities/nobody").status_code == 404
    for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"}, {"Authorization": TOKEN}):
        bare = TestClient(client.app, headers=headers)
        response = bare.post("/api/enroll", data={"name": "x"}, files={"files": ("a.png", person_photo(1, 1))})
        assert response.status_code == 401 and "bearer token" in response.json()["detail"]
        assert bare.get("/api/identities").status_code == 401
    too_big = client.post("/api/identify", content=b"x" * 900_000, headers={"content-type": "multipart/form-data"})
    assert too_big.status_code == 413
    assert _state(client) == before, "a refused request must write nothing"
    assert client.app.state.gallery.store.integrity_check() == "ok"


def test_binding_beyond_localhost_needs_a_token() -> None:
    check_binding(ServeOptions("g"))
    with pytest.raises(GalleryError, match="--token"):
        check_binding(ServeOptions("g", host="0.0.0.0"))
    with pytest.raises(GalleryError, match="at least 16"):
        check_binding(ServeOptions("g", host="0.0.0.0", token="short"))
    check_binding(ServeOptions("g", host="0.0.0.0", token="x" * 16))
