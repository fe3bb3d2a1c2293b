# Sourced by the training recipes (scripts/train_*.sh).
# step OUT CMD...: run `cmdvideo CMD... --out OUT` (log in OUT.log) unless OUT/done marks it
# finished, resuming from OUT's checkpoints if any; appends its wall time to $ROOT/wall_times.txt.
step() {
  local out=$1; shift
  [ -f "$out/done" ] && return 0
  local resume=()
  [ -d "$out/checkpoints" ] && [ -n "$(ls "$out/checkpoints")" ] && resume=(--resume)
  local start; start=$(date +%s)
  cmdvideo "$@" --out "$out" "${resume[@]}" > "$out.log" 2>&1
  echo "$out: $(( $(date +%s) - start )) s" | tee -a "$ROOT/wall_times.txt"
  touch "$out/done"
}
