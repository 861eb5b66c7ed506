# mh-purge.bash — bash completion for mh-purge(8): options, usual ages and sizes, and
# targets (domains and addresses) read from the spool named by --spool DIR on the line
# (else $MH_SPOOL) by asking mh-user itself (`domain list --names`, `list --names`).
# Words come from COMP_LINE, not COMP_WORDS: '@' is in COMP_WORDBREAKS, so bash would
# cut an address in three; the reply is trimmed to what bash replaces (after the break).

_mh_purge_opts='--all-domains --older-than --larger-than --uid --everything --dry-run -n --list
  --spool --json --quiet -q --help -h --version'

# Domains and addresses, one per line; $1 = spool ('' = default).
_mh_purge_names() {
  local -a spool=()
  [[ -n $1 ]] && spool=(--spool "$1")
  command mh-user "${spool[@]}" domain list --names 2>/dev/null
  command mh-user "${spool[@]}" list --names 2>/dev/null
}

# COMPREPLY = the words of $1 that start with $2, minus the part of $2 up to its last
# word-break character (bash keeps that part on the line).
_mh_purge_reply() {
  local IFS=$' \t\n'
  mapfile -t COMPREPLY < <(compgen -W "$1" -- "$2")
  local breaks=${COMP_WORDBREAKS//[^@:=]/}
  if [[ -n $breaks && $2 == *["$breaks"]* ]]; then
    local prefix=${2%"${2##*["$breaks"]}"}
    # With hostcomplete on (the default) readline hands '@' over with the text.
    shopt -q hostcomplete && prefix=${prefix%@}
    [[ -n $prefix ]] && COMPREPLY=("${COMPREPLY[@]#"$prefix"}")
  fi
}

_mh_purge() {
  local line=${COMP_LINE:0:COMP_POINT} cur='' prev=''
  local -a words
  read -ra words <<<"$line"
  if [[ -n $line && $line != *[[:space:]] ]]; then
    cur=${words[-1]}
    unset 'words[-1]'
  fi
  ((${#words[@]} > 0)) && prev=${words[-1]}
  COMPREPLY=()

  local spool='' i
  for ((i = 1; i < ${#words[@]}; i++)); do
    case ${words[i]} in
    --spool) spool=${words[i + 1]}; ((i++)) ;;
    --spool=*) spool=${words[i]#--spool=} ;;
    esac
  done
  [[ $spool == '~'/* ]] && spool=$HOME/${spool#'~/'}

  case $prev in
  --spool)
    compopt -o filenames 2>/dev/null
    local IFS=$'\n'
    mapfile -t COMPREPLY < <(compgen -d -- "$cur")
    ;;
  --older-than) _mh_purge_reply '1d 7d 30d 90d 180d 365d' "$cur" ;;
  --larger-than) _mh_purge_reply '1M 5M 10M 30M 100M' "$cur" ;;
  --uid) ;; # UIDLs: see mh-purge ADDRESS --list
  *)
    if [[ $cur == -* ]]; then
      _mh_purge_reply "$_mh_purge_opts" "$cur"
    else
      _mh_purge_reply "$(_mh_purge_names "$spool")" "$cur"
    fi
    ;;
  esac
  return 0
}

complete -F _mh_purge mh-purge
