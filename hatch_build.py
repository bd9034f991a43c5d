"""Build hook of the server distribution: it carries the browser wheel (built here from
``browser/``) and the asset manifest (npm versions and Subresource Integrity hashes,
computed from ``node_modules``; an sdist carries the manifest it was built with)."""

import importlib.util
import json
import shutil
import tempfile
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PACKAGE = "server/djreconnect_server"
MANIFEST = PACKAGE + "/_assets.json"


def _npm_module(root):
    """djreconnect_server.npm, loaded by path (it uses the standard library only)."""
    spec = importlib.util.spec_from_file_location("_djreconnect_npm", Path(root) / PACKAGE / "npm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version, build_data):
        if self.target_name == "wheel" and version == "editable":
            return  # a checkout serves node_modules and wheels/ itself
        root = Path(self.root)
        self._scratch = Path(tempfile.mkdtemp(prefix="djreconnect-build-"))
        if (root / MANIFEST).is_file():  # an sdist's (ignored by .gitignore: include it by name)
            if self.target_name == "wheel":
                build_data["force_include"][str(root / MANIFEST)] = "djreconnect_server/_assets.json"
        else:
            if not (root / "node_modules").is_dir():
                raise RuntimeError("the asset manifest is computed from npm's packages: run `npm ci` first")
            manifest = _npm_module(root).build_manifest(root)
            path = self._scratch / "_assets.json"
            path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
            target = MANIFEST if self.target_name == "sdist" else "djreconnect_server/_assets.json"
            build_data["force_include"][str(path)] = target
        if self.target_name == "wheel":
            from hatchling.builders.wheel import WheelBuilder

            built = list(WheelBuilder(str(root / "browser")).build(directory=str(self._scratch), versions=["standard"]))
            wheel = Path(built[0])
            build_data["force_include"][str(wheel)] = "djreconnect_server/wheels/" + wheel.name

    def finalize(self, version, build_data, artifact_path):
        scratch = getattr(self, "_scratch", None)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
