#!/usr/bin/env bash
# One-time container setup on the cluster: import the NeMo image to a .sqsh, create the enroot container,
# install what morphcpt needs that the image lacks, and smoke-test it.
#
#   containers/setup_enroot.sh [--image URI] [--sqsh PATH] [--name NAME] [--install overlay|pip|mount]
#                              [--break-system-packages] [--experiment NAME] [--force] [--skip-smoke] [--dry-run]
#
#   --image    registry image (default nvcr.io#nvidia/nemo:25.07, which has the NeMo 2 gemma3 recipes).
#              Pulling from nvcr.io needs NGC credentials in ~/.config/enroot/.credentials:
#              machine nvcr.io login $oauthtoken password <NGC_API_KEY>
#   --sqsh     where the squashfs image goes (default containers/nemo.sqsh; point it at scratch if $HOME is small)
#   --name     enroot container name (default morphcpt-nemo; must match container.name in the profile)
#   --install  overlay: (default) a venv made by the image's Python with --system-site-packages, on the shared
#                       filesystem at $MORPHCPT_CONTAINER_OVERLAY (default containers/overlay/NAME), holding
#                       only what the image lacks (submitit, pyahocorasick, wordfreq, ...), pinned by
#                       constraints.txt; the image's torch/NeMo/megatron are never replaced. run_in_enroot.sh
#                       activates it; every node sees it, so containers created later on other nodes work.
#              pip:     the same packages into the image's own Python, in this node's container only (a node
#                       that creates the container afresh from the .sqsh will not have them). A Debian/Ubuntu
#                       Python refuses this (externally-managed-environment) unless --break-system-packages.
#              mount:   install nothing (the image already has everything); the repository is mounted at
#                       /workspace and put on PYTHONPATH in every mode, so edits apply at once.
#   --force    re-import, re-create and remake the overlay even if they exist (the old image stays until the new
#              one is in)
#   --experiment  whose jobs the smoke test imports for (default seapile-tl-cpt)
#   --dry-run  print the commands without running them
#
# pip inside the container uses the index of PIP_INDEX_URL / PIP_EXTRA_INDEX_URL / PIP_TRUSTED_HOST when set.
# Where the site intercepts TLS (certificate verify failed), set PIP_CERT, REQUESTS_CA_BUNDLE or SSL_CERT_FILE
# to the site's CA bundle: the file is mounted into the container at the same path and handed to pip --cert.
# Run it where enroot is installed (usually a compute node: `qsub -I` / `srun --pty`), once per image.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
image="nvcr.io#nvidia/nemo:25.07"
sqsh="$repo/containers/nemo.sqsh"
name=morphcpt-nemo
install=overlay
break_system=0
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
    --break-system-packages) break_system=1; shift ;;
    --force) force=1; shift ;;
    --skip-smoke) smoke=0; shift ;;
    --dry-run) dry_run=1; shift ;;
    --experiment) experiment=${2:?}; shift 2 ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ "$install" =~ ^(overlay|pip|mount)$ ]] || die "--install must be 'overlay', 'pip' or 'mount', not '$install'"
((break_system)) && [[ "$install" != pip ]] && die "--break-system-packages goes with --install pip only"

if ! command -v enroot >/dev/null; then
  if ((dry_run)); then
    echo "# note: enroot is not installed on $(hostname); showing the commands only" >&2
  else
    die "enroot is not installed on $(hostname). Run this on a node with enroot (often a compute node), \
or use a profile with container.runtime: none (host Python) or pyxis (Slurm imports the image itself)."
  fi
fi

workdir=${MORPHCPT_CONTAINER_WORKDIR:-/workspace}
export MORPHCPT_CONTAINER_OVERLAY=${MORPHCPT_CONTAINER_OVERLAY:-$repo/containers/overlay/$name}
in_container=("$repo/containers/run_in_enroot.sh" --name "$name" --image "$sqsh")

if [[ -f "$sqsh" && $force -eq 0 ]]; then
  echo "setup_enroot: image $sqsh exists (use --force to re-import)"
else
  run mkdir -p "$(dirname "$sqsh")"
  # Imported under a temporary name and renamed: a failed import (no registry access) keeps the old image.
  run enroot import --output "$sqsh.importing" "docker://$image"
  run mv -f "$sqsh.importing" "$sqsh"
fi

((force)) && run enroot remove --force "$name"
# Created the way jobs create it (run_in_enroot.sh, under its lock), so a job starting now does not race us.
run "${in_container[@]}" --create

if [[ "$install" != mount ]]; then
  pass=() mounted=" "
  for variable in PIP_CERT REQUESTS_CA_BUNDLE SSL_CERT_FILE; do
    [[ -n "${!variable:-}" ]] || continue
    [[ -f "${!variable}" ]] || die "$variable=${!variable} is not a file (it should name the site's CA bundle)"
    pass+=(--env "$variable")
    [[ "$mounted" == *" ${!variable} "* ]] || pass+=(--mount "${!variable}:${!variable}")
    mounted+="${!variable} "
  done
  for variable in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST; do
    [[ -n "${!variable:-}" ]] && pass+=(--env "$variable")
  done
  if [[ "$install" == overlay ]]; then
    # Its parent is mounted so that the install can make it; afterwards run_in_enroot.sh mounts it itself.
    parent=$(dirname "$MORPHCPT_CONTAINER_OVERLAY")
    run mkdir -p "$parent"
    pass+=(--mount "$parent:$parent")
    target=(--overlay "$MORPHCPT_CONTAINER_OVERLAY")
  else
    target=(--system)
  fi
  ((break_system)) && target+=(--break-system-packages)
  ((force)) && target+=(--force)
  # The image's own Python does the install (--no-overlay: not an older overlay's), so the overlay venv is
  # made from it and sees its packages.
  run "${in_container[@]}" --no-overlay ${pass[@]+"${pass[@]}"} -- python3 "$workdir/containers/image_deps.py" install \
    --pyproject "$workdir/pyproject.toml" --constraints "$workdir/constraints.txt" "${target[@]}"
fi

if ((smoke)); then
  # Exactly the modules the experiment's job bodies import (from the stage types: `morphcpt job-modules`).
  host_python=${MORPHCPT_HOST_PYTHON:-$([[ -x "$repo/.venv/bin/python" ]] && echo "$repo/.venv/bin/python" || echo python3)}
  mapfile -t modules < <(cd "$repo" && PYTHONPATH="$repo/src${PYTHONPATH:+:$PYTHONPATH}" "$host_python" -m morphcpt job-modules -e "$experiment")
  ((${#modules[@]})) || die "could not list the modules of experiment $experiment with $host_python \
(morphcpt job-modules needs morphcpt's core packages: run make venv, or set MORPHCPT_HOST_PYTHON)"
  run "${in_container[@]}" -- python3 "$workdir/containers/image_deps.py" check "${modules[@]}" \
    || die "the container lacks packages the jobs of $experiment import (listed above); \
run again with the default --install overlay, or add them to the image"
fi
echo "setup_enroot: done. Set container.image: $sqsh and container.name: $name in your cluster profile."
