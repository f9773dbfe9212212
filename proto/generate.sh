#!/usr/bin/env bash
# Regenerates the Python modules of proto/ from the .proto files. The generated
# files are committed and never edited by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. proto/commands.proto
python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. --grpc_python_out=. proto/blobs.proto
