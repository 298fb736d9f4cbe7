"""``facemetric gallery``: enrol, verify and identify faces against a persistent gallery."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from facemetric.cli.common import (
    RAW,
    add_data,
    add_far,
    add_gallery,
    add_layout,
    add_model,
    add_out,
    add_output,
    input_file,
    print_json,
)
from facemetric.core.errors import ConfigError
from facemetric.data.video import MAX_FRAMES
from facemetric.gallery.pose_spread import MIN_FACE, MIN_SHARPNESS, SPREAD_PHOTOS

if TYPE_CHECKING:
    from facemetric.gallery.service import Gallery

HELP = "enroll / verify / identify faces against a persistent gallery"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gallery",
        help=HELP,
        formatter_class=RAW,
        description=(
            "A gallery of enrolled people: a folder (SQLite + FAISS) or a PostgreSQL database (pgvector) named by "
            "a postgresql:// URL. Every answer is JSON with the score, the calibrated threshold and the false-accept "
            "rate behind it. Start with `init`, enrol a few photos per person, then `calibrate` on labelled photos "
            "of real people."
        ),
        epilog="""examples:
  facemetric gallery --gallery team init --model dlib-resnet     pretrained, offline (pip install 'facemetric[dlib]')
  facemetric gallery --gallery team init --model runs/x/best.pt  your own model (or its .onnx export)
  facemetric gallery --gallery team enroll "Ada Lovelace" ada1.jpg ada2.jpg
  facemetric gallery --gallery team import --data photos/ --per-person 3   everyone in a folder-per-person tree
  facemetric gallery --gallery team calibrate --data labelled_photos/ --far 1e-3
  facemetric gallery --gallery team verify "Ada Lovelace" door_cam.jpg
  facemetric gallery --gallery team identify visitor.jpg --top-k 3
  facemetric gallery --gallery postgresql://me@db.example/faces init --model dlib-resnet   PostgreSQL + pgvector
  facemetric gallery --gallery team export -o team.fmgallery        everything, to one portable file
  facemetric gallery --gallery postgresql://me@db.example/faces import --data team.fmgallery   ... into a new gallery
  facemetric gallery --gallery team reembed --model runs/new/best.pt --out team-v2   the kept faces, a new model
  facemetric gallery --gallery "postgresql://me@db.example/faces?ef_search=100" recall   how often HNSW finds the person
  facemetric gallery --gallery team index --kind hnsw                a folder gallery past ~100,000 people
""",
    )
    add_gallery(p)
    add_model(
        p,
        required=False,
        extra="; default: the gallery's own (init: dlib-resnet). Any other must be the "
        "gallery's model (e.g. its file moved): embeddings of two models are never mixed",
    )
    gsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = gsub.add_parser("init", help="create an empty gallery for one model (--model, default dlib-resnet)")
    add_model(q, required=False, default=argparse.SUPPRESS, extra="; default dlib-resnet")
    q.add_argument(
        "--keep-faces",
        action="store_true",
        help="keep the face of every enrolled photo (a JPEG of the region around it, at most 400 px) so the "
        "gallery can be re-embedded when the model changes (`reembed`) without anyone enrolling again. Faces are "
        "personal data: keep them only where you may",
    )
    q = gsub.add_parser(
        "enroll",
        help="add photos of a person (created if new), or the best of a video; all or nothing",
        description="Enrols photos of one person in one transaction. Given a video (.mp4, .avi, .mov, .webm, "
        ".y4m ...; OpenCV reads it) or --max-photos, it keeps at most --max-photos faces spread over the head's "
        "pose (the most frontal first, then each time the pose least like those kept), skipping frames "
        "without a face, faces smaller than --min-face or blurred below --min-sharpness, and says why for "
        "each. Without them, every photo is enrolled and any unusable one fails the whole request.",
    )
    q.add_argument("name", help="the person's name (a label: no slash, no leading dot)")
    q.add_argument("images", nargs="+", type=input_file, help="photos with the person's face, or video files of it")
    q.add_argument(
        "--max-photos",
        type=int,
        default=None,
        help=f"keep at most this many, spread over pose (default with a video: {SPREAD_PHOTOS})",
    )
    q.add_argument(
        "--frames",
        type=int,
        default=MAX_FRAMES,
        help=f"frames taken from each video, evenly spread (default {MAX_FRAMES})",
    )
    q.add_argument(
        "--min-face",
        type=float,
        default=MIN_FACE,
        help=f"with a video or --max-photos: skip faces whose box is smaller, in pixels (default {MIN_FACE})",
    )
    q.add_argument(
        "--min-sharpness",
        type=float,
        default=MIN_SHARPNESS,
        help="with a video or --max-photos: skip faces less sharp (the variance of the Laplacian of the face at "
        f"112 px; default {MIN_SHARPNESS:g}: sharp photos of LFW and CelebA measure 40-400, blurred by 2 px under 16)",
    )
    q = gsub.add_parser(
        "import",
        help="enrol every person of a labelled folder (folder per person, CSV, ...), or load an export file",
        description="Enrols each person of --data with up to --per-person of their photos (in file "
        "order). A photo without a usable face is skipped and counted, not fatal; each person is "
        "one transaction. Folder names become the names.\n\nWhen --data is a gallery export file (`export`), "
        "--gallery must name a new gallery (a new folder, or a database without one): it is created with "
        "everything of the export (model, people, embeddings, thresholds, kept faces) in one transaction, "
        "and answers as the exported gallery did.",
    )
    add_data(q, "labelled photos (any layout `train` reads), or a .fmgallery export file")
    q.add_argument("--per-person", type=int, help="at most this many photos per person (default: all)")
    add_layout(q)
    q.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes that find faces (default: up to 4 for 32 photos or more; 0 = this process)",
    )
    q = gsub.add_parser("verify", help="is this photo the enrolled person NAME?")
    q.add_argument("name", help="the enrolled person's name")
    q.add_argument("image", type=input_file, help="the photo to check")
    q = gsub.add_parser("identify", help="who is in this photo, or `no correspondence`?")
    q.add_argument("image", type=input_file, help="the photo to search the gallery with")
    q.add_argument("--top-k", type=int, default=5, help="candidates listed (default 5)")
    gsub.add_parser("list", help="enrolled people with their photo counts")
    q = gsub.add_parser("remove", help="delete a person and their photos")
    q.add_argument("name", help="the enrolled person's name")
    q = gsub.add_parser(
        "calibrate",
        help="set the thresholds at a false-accept rate from labelled photos",
        description="Embeds every photo of --data (any layout `train` accepts; photos already enrolled "
        "are left out) and sets the identify threshold so that at most --far of the searches by "
        "someone not enrolled name anyone (each photo searched with its own person removed), and the "
        "verify threshold so that at most --far of comparisons with another person are accepted. "
        "Enrol first: the thresholds depend on the gallery.",
    )
    add_data(q, "labelled photos of real people (folder per person, CSV or flat files)")
    add_far(
        q,
        "identify, the fraction of searches by someone not enrolled that name someone; verify, the fraction of "
        "comparisons with another person that are accepted",
    )
    add_layout(q)
    q = gsub.add_parser(
        "export",
        help="write the whole gallery to one portable file (for `import`, e.g. SQLite to PostgreSQL)",
        description="Writes the model's identity, the calibrated thresholds, every person and photo record with "
        "its embedding (float32, bit for bit) and the kept faces to the --output file, a zip archive. `import` "
        "makes a new gallery of it, in either store, that gives the same answers.",
    )
    add_output(q, "the export file to write (conventionally NAME.fmgallery); replaced if it exists")
    q = gsub.add_parser(
        "reembed",
        help="a new gallery for another model, from the faces this one kept (init --keep-faces)",
        description="Embeds every face the gallery kept at enrolment with --model and writes a new gallery at "
        "--out (a new folder or postgresql:// URL); this gallery is not touched. Photos without a kept "
        "face, or in which the model finds no face, are skipped and counted. Thresholds are not carried over: "
        "calibrate the new gallery before relying on its decisions.",
    )
    add_model(q, required=True, default=argparse.SUPPRESS, extra="; the new gallery's model")
    add_out(q, "the new gallery: a new folder, or a postgresql:// URL of a database without one")
    q = gsub.add_parser(
        "recall",
        help="how often the gallery's approximate index (HNSW) finds what exact search finds",
        description="Searches --sample of the gallery's own enrolled faces with its index and exactly and compares "
        "the nearest other people each finds (each face's own person is first either way): recall_at_1, the same "
        "nearest other person; recall_at_k, the share of exact search's --top-k the index lists too. The URL's "
        "?ef_search= (PostgreSQL) or the gallery's `index --ef-search` (a folder) is the search measured. A folder "
        "gallery's flat index is exact (recall 1). No model is loaded.",
    )
    q.add_argument("--sample", type=int, default=200, help="enrolled faces searched both ways (default 200)")
    q.add_argument("--top-k", type=int, default=5, help="nearest other people compared (default 5)")
    q.add_argument("--seed", type=int, default=0, help="which faces are drawn (default 0)")
    q = gsub.add_parser(
        "index",
        help="how a folder gallery searches: exact (flat, the default) or FAISS HNSW (past ~100,000 people)",
        description="Sets what is given (the rest is kept), builds the index now and prints the settings; with "
        "nothing given, prints them. flat scores every enrolled image (exact; 79 ms a search at a million 128-d "
        "people on 2 cores); hnsw walks a graph (approximate: check it with `recall`). Every process opening "
        "the gallery follows. A PostgreSQL gallery sets these in its URL (?ef_search=, ?m=&ef_construction=). "
        "No model is loaded.",
    )
    q.add_argument("--kind", choices=["flat", "hnsw"], help="flat (exact) or hnsw (approximate)")
    q.add_argument("--m", type=int, help="HNSW links per node, 2-100 (default 32); rebuilds the graph")
    q.add_argument(
        "--ef-construction", type=int, help="HNSW build's candidate list, 4-1000 (default 128); rebuilds the graph"
    )
    q.add_argument(
        "--ef-search", type=int, help="HNSW search's least candidate list, 1-10000 (default 400); no rebuild"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from facemetric.embedders import load_embedder
    from facemetric.gallery import transfer
    from facemetric.gallery.photos import Photo
    from facemetric.gallery.service import Gallery

    if args.action == "init":
        gallery = Gallery.create(args.gallery, args.model or "dlib-resnet", keep_faces=args.keep_faces)
        info = gallery.store.embedder
        where = str(gallery.location)  # a URL's password hidden
        print_json({"gallery": where, "model": info.name, "fingerprint": info.fingerprint, "dim": info.dim})
        gallery.close()
        return 0
    if args.action == "import" and transfer.is_export(args.data):
        print_json(transfer.import_gallery(args.data, args.gallery, progress=not args.quiet))
        return 0
    if args.action == "export":
        print_json(transfer.export_gallery(args.gallery, args.output, progress=not args.quiet))
        return 0
    if args.action == "index":
        from facemetric.gallery.index_setup import configure_index

        print_json(configure_index(args.gallery, args.kind, args.m, args.ef_construction, args.ef_search))
        return 0
    if args.action == "recall":
        from facemetric.gallery.recall import index_recall

        print_json(index_recall(args.gallery, args.sample, args.top_k, args.seed))
        return 0
    if args.action == "reembed":
        model = load_embedder(args.model)
        print_json(transfer.reembed(args.gallery, model, args.out, progress=not args.quiet))
        return 0
    gallery = Gallery(args.gallery, load_embedder(args.model) if args.model else None, template=args.template)
    try:
        if args.action == "enroll":
            out: object = _enroll(gallery, args)
        elif args.action == "import":
            out = gallery.import_source(
                args.data, args.per_person, args.layout, progress=not args.quiet, workers=args.workers
            )
        elif args.action == "verify":
            out = gallery.verify(args.name, Photo.from_path(args.image))
        elif args.action == "identify":
            out = gallery.identify(Photo.from_path(args.image), args.top_k)
        elif args.action == "list":
            out = gallery.identities()
        elif args.action == "remove":
            out = gallery.remove(args.name)
        else:
            out = gallery.calibrate_from_source(args.data, args.far, args.layout, progress=not args.quiet)
    finally:
        gallery.close()
    print_json(out)
    return 0


def _enroll(gallery: Gallery, args: argparse.Namespace) -> object:
    """``enroll``: every photo as given, or, with a video or ``--max-photos``, the pose-spread choice."""
    from facemetric.data.video import is_video
    from facemetric.gallery.photos import Photo

    if args.max_photos is None and not any(is_video(p) for p in args.images):
        return gallery.enroll(args.name, [Photo.from_path(p) for p in args.images])
    for flag, value in (("--max-photos", args.max_photos), ("--frames", args.frames)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} must be at least 1, got {value}")
    photos: list[Photo] = []
    for path in args.images:
        photos += Photo.frames_of(path, args.frames) if is_video(path) else [Photo.from_path(path)]
    return gallery.enroll_spread(
        args.name,
        photos,
        args.max_photos or SPREAD_PHOTOS,
        args.min_face,
        args.min_sharpness,
        progress=not args.quiet,
    )
