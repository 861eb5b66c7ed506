# mh-serve.bash — bash completion for mh-serve(8): its options, directories after
# --spool, the services after --stdio (smtp, pop3) and usual durations after
# --shutdown-grace. mh-serve takes no operands, so only options are offered; the values
# of --client-ip, --threads and --delivery-threads are left to the user.
# Words come from COMP_LINE, not COMP_WORDS, as in mh-quota.bash: ':' and '=' are in
# COMP_WORDBREAKS, so bash would cut "--stdio=pop3" or an IPv6 address apart; a reply
# is trimmed to what bash replaces (after the last break).

_mh_serve_opts='--spool --check-config --stdio --client-ip --threads --delivery-threads
  --shutdown-grace --json --quiet -q --help -h --version'
_mh_serve_services='smtp pop3'
_mh_serve_durations='5s 10s 30s 1m 5m'

# COMPREPLY = the words of $1 that start with $2, minus the part of $2 up to its last
# word-break character (bash keeps that part on the line).
_mh_serve_reply() {
  local IFS=$' \t\n'
  mapfile -t COMPREPLY < <(compgen -W "$1" -- "$2")
  local breaks=${COMP_WORDBREAKS//[^@:=]/}
  if [[ -n $breaks && $2 == *["$breaks"]* ]]; then
    local prefix=${2%"${2##*["$breaks"]}"}
    [[ -n $prefix ]] && COMPREPLY=("${COMPREPLY[@]#"$prefix"}")
  fi
}

# Directories for --spool DIR ($1 = what is typed of DIR, $2 = what precedes it in the
# word, "--spool=" or "").
_mh_serve_dirs() {
  compopt -o filenames 2>/dev/null
  local IFS=$'\n' dir
  local -a dirs
  mapfile -t dirs < <(compgen -d -- "$1")
  COMPREPLY=()
  for dir in "${dirs[@]}"; do COMPREPLY+=("$2$dir"); done
  if [[ -n $2 && $COMP_WORDBREAKS == *=* ]]; then
    COMPREPLY=("${COMPREPLY[@]#"$2"}")
  fi
}

_mh_serve() {
  local line=${COMP_LINE:0:COMP_POINT} cur='' prev=''
  local -a words
  read -ra words <<<"$line"
  if [[ -n $line && $line != *[[:space:]] ]]; then
    cur=${words[-1]}
    unset 'words[-1]'
  fi
  ((${#words[@]} > 0)) && prev=${words[-1]}
  COMPREPLY=()

  case $prev in
  --spool) _mh_serve_dirs "$cur" ''; return 0 ;;
  --stdio) _mh_serve_reply "$_mh_serve_services" "$cur"; return 0 ;;
  --shutdown-grace) _mh_serve_reply "$_mh_serve_durations" "$cur"; return 0 ;;
  --client-ip | --threads | --delivery-threads) return 0 ;; # an address, a number
  esac

  case $cur in
  --spool=*) _mh_serve_dirs "${cur#--spool=}" --spool= ;;
  --stdio=*)
    local services='' s
    for s in $_mh_serve_services; do services+=" --stdio=$s"; done
    _mh_serve_reply "$services" "$cur"
    ;;
  --shutdown-grace=*)
    local durations='' d
    for d in $_mh_serve_durations; do durations+=" --shutdown-grace=$d"; done
    _mh_serve_reply "$durations" "$cur"
    ;;
  --client-ip=* | --threads=* | --delivery-threads=*) ;;
  '' | -*) _mh_serve_reply "$_mh_serve_opts" "$cur" ;;
  esac
  return 0
}

complete -F _mh_serve mh-serve
