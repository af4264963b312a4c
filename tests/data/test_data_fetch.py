"""`make data` (attn_jax.data.fetch) on a handmade .deb: unpack, then build, then reuse."""

import io
import tarfile

from test_data_sources import FAKE_NOVELS, write_fake_austen

from attn_jax.data import fetch, load_documents, sources


def _tar_xz(add):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        add(tar)
    return buf.getvalue()


def make_deb(tree, path):
    """Packs the files under `tree` as a .deb: an ar archive with control and data tars."""
    control = b"Package: r-cran-janeaustenr\nVersion: 0\nArchitecture: all\n"

    def add_control(tar):
        info = tarfile.TarInfo("./control")
        info.size = len(control)
        tar.addfile(info, io.BytesIO(control))

    def add_data(tar):
        tar.add(tree / "debian" / sources.AUSTEN_DEB / "usr", arcname="./usr")

    members = [
        ("debian-binary", b"2.0\n"),
        ("control.tar.xz", _tar_xz(add_control)),
        ("data.tar.xz", _tar_xz(add_data)),
    ]
    out = b"!<arch>\n"
    for name, body in members:
        header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(body):<10}`\n"
        out += header.encode() + body + b"\n" * (len(body) % 2)
    path.write_bytes(out)
    return path


def test_fetch_unpacks_a_deb_and_builds(tmp_path, capsys):
    write_fake_austen(tmp_path / "src", FAKE_NOVELS)
    deb = make_deb(tmp_path / "src", tmp_path / "r-cran-janeaustenr_1.0.0-1_all.deb")

    unpacked = tmp_path / "py"
    fetch.extract_deb(deb, unpacked)  # the no-dpkg-deb path
    assert (unpacked / sources.AUSTEN_RDB).read_bytes() == (
        tmp_path / "src" / "debian" / sources.AUSTEN_DEB / sources.AUSTEN_RDB
    ).read_bytes()

    root = tmp_path / "data"
    args = ["--data_dir", str(root), "--deb", str(deb), "--datasets", "austen"]
    assert fetch.main(args) == 0
    assert "austen:" in capsys.readouterr().out
    docs = load_documents("austen", "validation", root=root)
    assert docs[0].startswith("Persuasion\n")
    assert fetch.main(args) == 0  # a second run finds everything in place
