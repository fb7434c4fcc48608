"""Input and environment never give a traceback: odd files, links, encodings and folders are errors
naming the path, at the line and column where that applies, with nothing read that would block."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mesh.manifest import ManifestError, load

import manifests


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return manifests.write(tmp_path / "stack", manifests.BASE)


def rendered(root: Path) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        load(root)
    return [d.render() for d in caught.value.diagnostics]


def _symlink_dangling(root: Path) -> None:
    (root / "services/zeta.yaml").symlink_to(root / "services/nowhere.yaml")


def _symlink_loop(root: Path) -> None:
    (root / "services/zeta.yaml").symlink_to(root / "services/zeta.yaml")


def _folder_named_yaml(root: Path) -> None:
    (root / "services/zeta.yaml").mkdir()


def _fifo(root: Path) -> None:
    os.mkfifo(root / "services/zeta.yaml")


def _fifo_fleet(root: Path) -> None:
    (root / "fleet.yaml").unlink()
    os.mkfifo(root / "fleet.yaml")


def _latin1(root: Path) -> None:
    text = manifests.SERVICE_C.replace("tier: core", "tier: c\xf6re")
    (root / "services/gamma.yaml").write_bytes(text.encode("latin-1"))


def _nul(root: Path) -> None:
    (root / "services/gamma.yaml").write_bytes(manifests.SERVICE_C.encode() + b"owner: a\x00b\n")


def _deep(root: Path) -> None:
    (root / "services/gamma.yaml").write_text(manifests.SERVICE_C + "owner: " + "[" * 5000 + "]" * 5000 + "\n")


def _locations_list(root: Path) -> None:
    (root / "locations.yaml").write_text("- alpha\n")


def _folder_loop(root: Path) -> None:
    (root / "services/team").mkdir()
    (root / "services/team/back").symlink_to(root / "services")


# (id, make the mistake, the diagnostic expected, as rendered, relative to the working directory)
CASES = [
    ("dangling-symlink", _symlink_dangling, "stack/services/zeta.yaml:1: <document>: is a broken symbolic link"),
    ("looping-symlink", _symlink_loop, "stack/services/zeta.yaml:1: <document>: is a symbolic link that loops"),
    ("folder-named-yaml", _folder_named_yaml, "stack/services/zeta.yaml:1: <document>: is a folder, not a file"),
    ("fifo-service", _fifo, "stack/services/zeta.yaml:1: <document>: is not a regular file (a FIFO"),
    ("fifo-fleet", _fifo_fleet, "stack/fleet.yaml:1: <document>: is not a regular file (a FIFO"),
    ("latin-1", _latin1, "stack/services/gamma.yaml:5: <document>: column 8: byte 0xf6 is not UTF-8"),
    ("nul-byte", _nul, "stack/services/gamma.yaml:9: <document>: column 9: a NUL byte (U+0000)"),
    ("deep-nesting", _deep, "stack/services/gamma.yaml:9: <document>: YAML nested more than 100 levels deep"),
    ("locations-not-a-mapping", _locations_list, "stack/locations.yaml:1: <document>: must map each service name to "
     "its clusters (got a list)"),
    ("folder-link-loop", _folder_loop, "stack/services/team/back:1: <document>: is a folder link that loops back"),
]


@pytest.mark.parametrize(("make", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_odd_files_are_errors_naming_them(stack: Path, make: object, expected: str) -> None:
    make(stack)  # type: ignore[operator]
    messages = rendered(stack)
    assert [m for m in messages if m.startswith(expected)], messages
    assert not [m for m in messages if "has no location" in m], "no cascade"


def test_hidden_files_are_not_part_of_the_manifest(stack: Path) -> None:
    (stack / "services/.gitkeep").write_text("")
    (stack / "services/.gamma.yaml.swp").write_bytes(b"\x00\xff")
    assert len(load(stack).world.services) == 3


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_unreadable_file_and_unlistable_folder(stack: Path) -> None:
    (stack / "services/gamma.yaml").chmod(0)
    assert "stack/services/gamma.yaml:1: <document>: cannot read file: permission denied" in rendered(stack)
    (stack / "services/gamma.yaml").chmod(0o644)
    (stack / "services").chmod(0)
    try:
        assert "stack/services:1: <document>: cannot list folder: permission denied" in rendered(stack)
    finally:
        (stack / "services").chmod(0o755)


@pytest.mark.parametrize(("make", "expected"), [
    (lambda p: os.mkfifo(p), "is not a regular file"),
    (lambda p: p.symlink_to(p.parent / "gone"), "is a broken symbolic link"),
    (lambda p: None, "no such file or directory"),
], ids=["fifo", "broken-link", "missing"])
def test_a_manifest_path_that_is_no_manifest(tmp_path: Path, make: object, expected: str) -> None:
    path = tmp_path / "manifest"
    make(path)  # type: ignore[operator]
    assert expected in rendered(path)[0]


def test_a_fleet_file_alone_is_not_a_manifest(stack: Path) -> None:
    assert rendered(stack / "fleet.yaml") == [
        "stack/fleet.yaml:1: <document>: this is a fleet file without services: a single-file manifest needs "
        "`services:` and `locations:` too; give its folder (stack) or add them here"]


def test_paths_outside_the_working_directory_print_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = manifests.write(tmp_path / "stack", manifests.edited([("services/gamma.yaml", "name: grpc", "name: http")]))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert rendered(root)[0].startswith(f"{root}/services/gamma.yaml:8: ports[1].name: ")
    assert rendered(Path("../stack"))[0].startswith("../stack/services/gamma.yaml:8: ")


def test_a_manifest_from_git_names_its_side(tmp_path: Path) -> None:
    root = manifests.write(tmp_path / "x", manifests.edited([("services/gamma.yaml", "name: grpc", "name: http")]))
    with pytest.raises(ManifestError) as caught:
        load(root, shown_as="main:stacks/prod")
    assert caught.value.diagnostics[0].render().startswith("main:stacks/prod/services/gamma.yaml:8: ports[1].name:")
