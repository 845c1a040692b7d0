"""Generate the regulator schema's Python code (`make proto`) with the maintained toolchain: protoc as
grpcio-tools ships it, and mypy-protobuf for the type stubs mypy --strict reads. The generated files are
committed; tests/regulator/test_schema.py fails when they differ from a fresh generation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "tripguard" / "regulator" / "proto"
PROTO = "otipc.proto"
GENERATED = ("otipc_pb2.py", "otipc_pb2.pyi")


def generate(out_dir: Path) -> list[Path]:
    """Write the generated files for otipc.proto into `out_dir`; return their paths."""
    plugin = Path(sys.executable).parent / "protoc-gen-mypy"
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_DIR}", f"--plugin=protoc-gen-mypy={plugin}",
         f"--python_out={out_dir}", f"--mypy_out=quiet:{out_dir}", str(PROTO_DIR / PROTO)],
        check=True)
    return [out_dir / name for name in GENERATED]


if __name__ == "__main__":
    for path in generate(PROTO_DIR):
        print(path.relative_to(ROOT))
