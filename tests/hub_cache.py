"""A Hugging Face Hub cache written by hand, exactly as huggingface_hub lays it out, so that the
real download code (`snapshot_download`, `hf_hub_download`) can be exercised offline."""

import hashlib
import json
import os
from pathlib import Path


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubCache:
    """Writes a Hugging Face cache exactly as huggingface_hub lays it out (HF_HUB_CACHE):

        models--OWNER--NAME/blobs/<etag>          file contents; etag = sha256 for LFS files
                                                  (*.safetensors), git blob sha1 otherwise
        models--OWNER--NAME/snapshots/<commit>/F  relative symlink to ../../blobs/<etag>
        models--OWNER--NAME/refs/<revision>       the commit sha, no newline (branches and tags alike)
        models--OWNER--NAME/trees/<commit>.json   the repo's tree listing (written by snapshot_download)
    """

    def __init__(self, root: Path):
        self.root = root

    def add(self, repo_id: str, commit: str, files: dict[str, bytes], refs=(), tree=True,
            listed_only=()) -> Path:
        storage = self.root / ("models--" + repo_id.replace("/", "--"))
        entries = {".gitattributes": {"size": 1519, "blob_id": "a6344aac8c09253b3b630fb776ae94478aa0275b"}}
        for name, data in files.items():
            lfs = name.endswith((".safetensors", ".pth", ".bin"))
            if lfs:
                etag = hashlib.sha256(data).hexdigest()
                pointer = (f"version https://git-lfs.github.com/spec/v1\noid sha256:{etag}\n"
                           f"size {len(data)}\n").encode()
                entries[name] = {"size": len(data), "blob_id": git_blob_sha1(pointer),
                                 "lfs_sha256": etag, "lfs_size": len(data)}
            else:
                etag = git_blob_sha1(data)
                entries[name] = {"size": len(data), "blob_id": etag}
            if name in listed_only:
                continue  # in the repo's tree, not downloaded
            blob = storage / "blobs" / etag
            blob.parent.mkdir(parents=True, exist_ok=True)
            blob.write_bytes(data)
            link = storage / "snapshots" / commit / name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(blob, link.parent))
        for ref in refs:
            (storage / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
            (storage / "refs" / ref).write_text(commit)
        if tree:
            (storage / "trees").mkdir(parents=True, exist_ok=True)
            (storage / "trees" / f"{commit}.json").write_text(
                json.dumps({"format_version": 1, "files": entries}, indent=1))
        return storage


def folder_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


COMMIT_A = "a" * 8 + hashlib.sha1(b"commit A").hexdigest()[8:]
COMMIT_B = "b" * 8 + hashlib.sha1(b"commit B").hexdigest()[8:]


