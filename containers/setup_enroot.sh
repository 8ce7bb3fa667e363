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
#   --force    re-import and re-create even if they exist
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
    -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
  ((force)) && run rm -f "$sqsh"
  run enroot import --output "$sqsh" "docker://$image"
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
  run "$repo/containers/run_in_enroot.sh" --name "$name" --image "$sqsh" -- python3 -c \
    'import torch, nemo, morphcpt; from nemo.collections import llm; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "gpus", torch.cuda.device_count()); print("nemo", nemo.__version__, "morphcpt", morphcpt.__version__)'
fi
echo "setup_enroot: done. Set container.image: $sqsh and container.name: $name in your cluster profile."
