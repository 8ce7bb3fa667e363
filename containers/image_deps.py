"""morphcpt's Python dependencies inside a container image: check them, and install the missing ones.

Runs with the *image's* Python (`containers/setup_enroot.sh` and `morphcpt verify-setup` call it through
`containers/run_in_enroot.sh`), so it uses the standard library and pip only: morphcpt's own packages are
what it is checking for.

  python3 containers/image_deps.py check MODULE...
      import each module; print one line per module (`ok`/`missing`/`broken`, the module, the package that
      provides it, why) and exit 1 if any failed.
  python3 containers/image_deps.py install --pyproject P --constraints C (--overlay DIR | --system)
      install what morphcpt needs (its dependencies and the data, train and eval extras) that the image
      lacks, pinned by constraints.txt, without touching what the image already has.

Why an overlay venv by default: `enroot create` unpacks the image into ENROOT_DATA_PATH, often per node, and
jobs on a node without the container create it afresh from the .sqsh; packages pip-installed into one node's
container are not in the next one. A venv on the shared filesystem, made by the image's own Python with
`--system-site-packages`, is the same on every node, keeps the image's torch/NeMo/megatron visible beneath it,
and is not "externally managed" even when the image's Python is Debian's. run_in_enroot.sh mounts it at the
same path and puts it first on PATH.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

# Import name -> the distribution that provides it, where the two differ in more than `_` vs `-`.
PACKAGE_OF_MODULE = {
    "yaml": "PyYAML",
    "ahocorasick": "pyahocorasick",
    "megatron": "megatron-core",
    "nemo": "nemo-toolkit",
    "nemo_run": "nemo-run",
    "morphcpt": "morphcpt (the repository's src/, on PYTHONPATH inside the container)",
}
EXTRAS = ("data", "train", "eval")  # not dev: tests and linters run on the login node, not in jobs
CA_VARIABLES = ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")  # first one set wins, handed to pip --cert
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*?)\s*$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def package_of(module: str) -> str:
    top = module.split(".")[0]
    return PACKAGE_OF_MODULE.get(top, top.replace("_", "-"))


def module_of(distribution: str) -> str:
    wanted = canonical(distribution)
    for module, package in PACKAGE_OF_MODULE.items():
        if canonical(package) == wanted:
            return module
    return wanted.replace("-", "_")


# ---------------------------------------------------------------- check


def check(modules: list[str]) -> int:
    failed = 0
    for module in modules:
        try:
            imported = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            failed += 1
            print(f"missing\t{module}\t{package_of(module)}\t{exc}")
        except Exception as exc:  # an installed package that does not import (ABI, a missing library) fails too
            failed += 1
            print(f"broken\t{module}\t{package_of(module)}\t{type(exc).__name__}: {exc}".replace("\n", " "))
        else:
            print(f"ok\t{module}\t{package_of(module)}\t{getattr(imported, '__file__', None) or 'built in'}")
    print(f"imported {len(modules) - failed} of {len(modules)} with {sys.executable} ({sys.version.split()[0]})")
    return 1 if failed else 0


# ---------------------------------------------------------------- install


def requirements(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    found = list(project["dependencies"])
    for extra in EXTRAS:
        found += project.get("optional-dependencies", {}).get(extra, [])
    return list(dict.fromkeys(found))


def installed_versions() -> dict[str, str]:
    """Every distribution this Python sees (the image's, plus an overlay's when run from one)."""
    versions: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name and dist.version:
            versions.setdefault(canonical(name), dist.version)
    return versions


def _satisfies(version: str, specifier: str) -> bool | None:
    """Whether `version` meets `specifier`; None when pip's packaging cannot read one of them."""
    try:
        from pip._vendor.packaging.specifiers import InvalidSpecifier, SpecifierSet
        from pip._vendor.packaging.version import InvalidVersion, Version
    except ImportError:
        return None
    try:
        return Version(version) in SpecifierSet(specifier, prereleases=True)
    except (InvalidSpecifier, InvalidVersion):
        return None


def _pin_is_valid(version: str) -> bool:
    try:
        from pip._vendor.packaging.version import InvalidVersion, Version
    except ImportError:
        return bool(re.fullmatch(r"[0-9][0-9A-Za-z.+!_-]*", version))
    try:
        Version(version)
    except InvalidVersion:
        return False
    return True


def plan(wanted: list[str], image: dict[str, str]) -> tuple[list[str], list[str]]:
    """(requirements to install, notes on what the image already provides)."""
    missing: list[str] = []
    notes: list[str] = []
    for line in wanted:
        match = _REQUIREMENT.match(line)
        if not match:
            raise SystemExit(f"image_deps: cannot read the requirement {line!r} in pyproject.toml")
        name, specifier = match.group(1), match.group(3)
        have = image.get(canonical(name))
        if have is not None:
            ok = _satisfies(have, specifier) if specifier else True
            # The image's build wins even when it is older than morphcpt asks: replacing torch, megatron or
            # transformers under NeMo breaks NeMo, and the import check says if morphcpt cannot use it.
            verdict = "" if ok is not False else f" (morphcpt asks {specifier}; keeping the image's)"
            notes.append(f"from the image: {name} {have}{verdict}")
        elif importlib.util.find_spec(module_of(name).split(".")[0]) is not None:
            notes.append(f"importable without package metadata (PYTHONPATH?): {name}; not installed")
        else:
            missing.append(line)
    return missing, notes


def constraints_file(constraints: Path, image: dict[str, str], out: Path) -> Path:
    """constraints.txt without the packages the image has, plus the image's own versions pinned: pip may add
    packages but never replace one of the image's (a conflict fails loudly instead)."""
    lines = [f"# made by containers/image_deps.py from {constraints} and the image's installed packages"]
    for raw in constraints.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        match = _REQUIREMENT.match(line) if line else None
        if match and canonical(match.group(1)) not in image:
            lines.append(line)
    lines += [f"{name}=={version}" for name, version in sorted(image.items()) if _pin_is_valid(version)]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def _externally_managed() -> bool:
    in_venv = sys.prefix != sys.base_prefix
    return not in_venv and Path(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED").exists()


def _has_pip(python: str) -> bool:
    return subprocess.run([python, "-m", "pip", "--version"], capture_output=True, check=False).returncode == 0


def make_overlay(directory: Path, force: bool) -> str:
    """The overlay venv's python, made by this (the image's) Python with the image's packages visible."""
    cfg = directory / "pyvenv.cfg"
    version = ".".join(map(str, sys.version_info[:3]))
    current = cfg.read_text(encoding="utf-8") if cfg.exists() else ""
    stale = bool(current) and f"version = {version}" not in current and f"version_info = {version}" not in current
    python = directory / "bin" / "python"
    if force or stale or not cfg.exists():
        why = "--force" if force else "the image's Python changed" if stale else "new"
        print(f"image_deps: making the overlay venv {directory} ({why}) with {sys.executable}", flush=True)
        # Without pip: the image's own pip (visible through --system-site-packages) installs into the venv,
        # and images whose Python lacks ensurepip (Debian without python3-venv) still work.
        subprocess.run(
            [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", "--clear", str(directory)],
            check=True,
        )
        if not _has_pip(str(python)):
            print("image_deps: the image's Python has no pip; bootstrapping one into the overlay", flush=True)
            subprocess.run([str(python), "-m", "ensurepip", "--default-pip"], check=True)
    return str(python)


def install(args: argparse.Namespace) -> int:
    image = installed_versions()
    missing, notes = plan(requirements(args.pyproject), image)
    for note in notes:
        print(f"image_deps: {note}")
    if args.overlay:
        python = make_overlay(args.overlay, args.force)
        record = args.overlay / "morphcpt-constraints.txt"
    else:
        if _externally_managed() and not args.break_system_packages:
            sys.exit(
                f"image_deps: the image's Python ({sys.executable}) is externally managed (PEP 668, "
                f"{Path(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')}), so pip refuses to install into "
                "it. Use the default --install overlay (a venv beside the repository), or, if you accept "
                "changing the image's system Python, pass --break-system-packages."
            )
        python = sys.executable
        record = Path(os.environ.get("TMPDIR", "/tmp")) / f"morphcpt-constraints-{os.getpid()}.txt"
    if not missing:
        print("image_deps: nothing to install: the image has every package morphcpt needs")
        return 0
    pins = constraints_file(args.constraints, image, record)
    command = [python, "-m", "pip", "install", "--disable-pip-version-check", "-c", str(pins), *missing]
    ca = next((os.environ[name] for name in CA_VARIABLES if os.environ.get(name)), None)
    if ca:
        # pip reads PIP_CERT itself, but REQUESTS_CA_BUNDLE / SSL_CERT_FILE are not honoured by every pip
        # (truststore in pip >= 24.2): naming the bundle explicitly works with all of them.
        command[4:4] = ["--cert", ca]
    env = dict(os.environ)
    if args.break_system_packages:
        env["PIP_BREAK_SYSTEM_PACKAGES"] = "1"
    print("image_deps: installing " + " ".join(missing) + f" (constraints: {pins})", flush=True)
    status = subprocess.run(command, env=env, check=False).returncode
    if status:
        print(
            f"image_deps: pip failed (exit {status}). A certificate error means the site intercepts TLS: "
            "set PIP_CERT (or REQUESTS_CA_BUNDLE / SSL_CERT_FILE) to the site's CA bundle and run "
            "setup_enroot.sh again; a conflict with a pinned image package means the image is too old or too new "
            "for constraints.txt.",
            file=sys.stderr,
        )
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="image_deps.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    checking = sub.add_parser("check", help="import the given modules")
    checking.add_argument("modules", nargs="+")
    installing = sub.add_parser("install", help="install what morphcpt needs and the image lacks")
    installing.add_argument("--pyproject", type=Path, required=True)
    installing.add_argument("--constraints", type=Path, required=True)
    target = installing.add_mutually_exclusive_group(required=True)
    target.add_argument("--overlay", type=Path, help="venv on the shared filesystem (made if absent)")
    target.add_argument("--system", action="store_true", help="the image's own Python")
    installing.add_argument("--break-system-packages", action="store_true")
    installing.add_argument("--force", action="store_true", help="remake the overlay venv")
    args = parser.parse_args(argv)
    return check(args.modules) if args.command == "check" else install(args)


if __name__ == "__main__":
    sys.exit(main())
