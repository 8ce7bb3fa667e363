#!/usr/bin/env bash
# One-time container setup on the cluster: import the NeMo image to a .sqsh, create the enroot container,
# make morphcpt available in it, and smoke-test it.
#
#   containers/setup_enroot.sh [--image URI] [--sqsh PATH] [--name NAME] [--install mount|pip]
#                              [--force] [--skip-smoke] [--dry-run]
#
#   --image    registry image (default nvcr.io#nvidia/nemo:25.07, which has the NeMo 2 gemma3 recipes).
#              Pulling from nvcr.io needs NGC credentials in ~/.config/enroot/.credentials:
#              machine nvcr.io login $oauthtoken password <NGC_API_KEY>
#   --sqsh     where the squashfs image goes (default containers/nemo.sqsh; point it at scratch if $HOME is small)
#   --name     enroot container name (default morphcpt-nemo; must match container.name in the profile)
#   --install  mount: the repository is mounted at /workspace and put on PYTHONPATH (default; edits apply at once)
#              pip:   additionally pip-install morphcpt's light dependencies into the container
#   --force    re-import and re-create even if they exist (the old image stays until the new one is in)
#   --experiment  whose jobs the smoke test imports for (default seapile-tl-cpt)
#   --dry-run  print the commands without running them
#
# Run it where enroot is installed (usually a compute node: `qsub -I` / `srun --pty`), once per image.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
image="nvcr.io#nvidia/nemo:25.07"
sqsh="$repo/containers/nemo.sqsh"
name=morphcpt-nemo
install=mount
force=0
smoke=1
dry_run=0
experiment=seapile-tl-cpt

die() { echo "setup_enroot: $*" >&2; exit 2; }
run() {
  printf '+'; printf ' %q' "$@"; printf '\n'
  ((dry_run)) || "$@"
}

while (($#)); do
  case "$1" in
    --image) image=${2:?}; shift 2 ;;
    --sqsh) sqsh=${2:?}; shift 2 ;;
    --name) name=${2:?}; shift 2 ;;
    --install) install=${2:?}; shift 2 ;;
    --force) force=1; shift ;;
    --skip-smoke) smoke=0; shift ;;
    --dry-run) dry_run=1; shift ;;
    --experiment) experiment=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ "$install" == mount || "$install" == pip ]] || die "--install must be 'mount' or 'pip', not '$install'"

if ! command -v enroot >/dev/null; then
  if ((dry_run)); then
    echo "# note: enroot is not installed on $(hostname); showing the commands only" >&2
  else
    die "enroot is not installed on $(hostname). Run this on a node with enroot (often a compute node), \
or use a profile with container.runtime: none (host Python) or pyxis (Slurm imports the image itself)."
  fi
fi

if [[ -f "$sqsh" && $force -eq 0 ]]; then
  echo "setup_enroot: image $sqsh exists (use --force to re-import)"
else
  run mkdir -p "$(dirname "$sqsh")"
  # Imported under a temporary name and renamed: a failed import (no registry access) keeps the old image.
  run enroot import --output "$sqsh.importing" "docker://$image"
  run mv -f "$sqsh.importing" "$sqsh"
fi

if ((!dry_run)) && enroot list | grep -qx -- "$name" && ((!force)); then
  echo "setup_enroot: container $name exists (use --force to re-create)"
else
  ((force)) && run enroot remove --force "$name"
  run enroot create --name "$name" "$sqsh"
fi

if [[ "$install" == pip ]]; then
  run enroot start --rw --mount "$repo:/workspace" "$name" \
    pip install --no-deps -e /workspace
  run enroot start --rw "$name" pip install "submitit>=1.5" "pyahocorasick>=2.1" "wordfreq>=3.1"
fi

if ((smoke)); then
  # Exactly the modules the experiment's job bodies import (from the stage types: `morphcpt job-modules`).
  host_python=${MORPHCPT_HOST_PYTHON:-$([[ -x "$repo/.venv/bin/python" ]] && echo "$repo/.venv/bin/python" || echo python3)}
  mapfile -t modules < <(cd "$repo" && PYTHONPATH="$repo/src${PYTHONPATH:+:$PYTHONPATH}" "$host_python" -m morphcpt job-modules -e "$experiment")
  ((${#modules[@]})) || die "could not list the modules of experiment $experiment with $host_python \
(morphcpt job-modules needs morphcpt's core packages: run make venv, or set MORPHCPT_HOST_PYTHON)"
  run "$repo/containers/run_in_enroot.sh" --name "$name" --image "$sqsh" -- python3 -c \
    'import importlib, sys
missing = []
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except Exception as exc:
        missing.append(f"{name} ({exc})")
print("imported:", len(sys.argv) - 1 - len(missing), "of", len(sys.argv) - 1)
sys.exit("missing in the container: " + ", ".join(missing) if missing else 0)' "${modules[@]}"
fi
echo "setup_enroot: done. Set container.image: $sqsh and container.name: $name in your cluster profile."
