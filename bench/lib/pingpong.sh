# The MPI ping-pong's figures (test/helpers/mpi-pingpong.c prints, on rank 0,
# "pingpong 8 B: 1.23 us one-way, 6.5 MB/s" and "pingpong 1048576 B: ..."),
# for bench/sharens.sh and bench/cluster.sh. Source it:
#
#   . "$HERE/lib/pingpong.sh"
#
# pingpong_parse OUTPUT       prints "LAT8 BW1M": the 8 B one-way latency (us) and
#                             the 1 MiB bandwidth (MB/s); status 1 when either is missing
# pingpong_best RUNS NAME CMD...
#                             runs `as_user CMD...` RUNS times (as_user and die are the
#                             caller's) and sets PP_BEST8 (lowest latency), PP_BEST1M
#                             (highest bandwidth) and PP_CMA_WARN (yes when Open MPI said in
#                             any run that CMA is off between user namespaces, else no)

pingpong_parse() {
  local _pp_l8 _pp_l1m
  _pp_l8=$(sed -n 's/^pingpong 8 B: \([0-9.]*\) us.*/\1/p' <<<"$1")
  _pp_l1m=$(sed -n 's/^pingpong 1048576 B: .*us one-way, \([0-9.]*\) MB\/s/\1/p' <<<"$1")
  [ -n "$_pp_l8" ] && [ -n "$_pp_l1m" ] || return 1
  printf '%s %s\n' "$_pp_l8" "$_pp_l1m"
}

pingpong_best() {
  # _pp_ names: as_user and die see the caller's variables (bash scoping is dynamic)
  local _pp_runs=$1 _pp_name=$2 _pp_out _pp_figs _pp_l8 _pp_l1m _pp_i
  shift 2
  PP_BEST8='' PP_BEST1M='' PP_CMA_WARN=no
  for ((_pp_i = 0; _pp_i < _pp_runs; _pp_i++)); do
    _pp_out=$(as_user "$@" 2>&1) || { printf '%s\n' "$_pp_out" >&2; die "$_pp_name failed"; }
    grep -q 'not available due to different user namespaces' <<<"$_pp_out" && PP_CMA_WARN=yes
    _pp_figs=$(pingpong_parse "$_pp_out") || { printf '%s\n' "$_pp_out" >&2; die "$_pp_name: no figures"; }
    read -r _pp_l8 _pp_l1m <<<"$_pp_figs"
    if [ -z "$PP_BEST8" ] || awk "BEGIN{exit !($_pp_l8 < $PP_BEST8)}"; then PP_BEST8=$_pp_l8; fi
    if [ -z "$PP_BEST1M" ] || awk "BEGIN{exit !($_pp_l1m > $PP_BEST1M)}"; then PP_BEST1M=$_pp_l1m; fi
  done
}
