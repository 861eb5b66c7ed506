# mh-quota.bash — bash completion for mh-quota(8): commands, options, and domain and
# account names read from the spool named by --spool DIR on the line (else $MH_SPOOL)
# by asking mh-user itself (`domain list --names`, `list --names`).
# Words come from COMP_LINE, not COMP_WORDS: '@' is in COMP_WORDBREAKS, so bash would
# cut an address in three; the reply is trimmed to what bash replaces (after the break).

_mh_quota_common_opts='--spool --json --quiet -q --help -h --version'

# Names from the spool, one per line: $1 = spool ('' = default), $2 = domains | targets.
_mh_quota_names() {
  local -a spool=()
  [[ -n $1 ]] && spool=(--spool "$1")
  command mh-user "${spool[@]}" domain list --names 2>/dev/null
  [[ $2 == targets ]] && command mh-user "${spool[@]}" list --names 2>/dev/null
}

# COMPREPLY = the words of $1 that start with $2, minus the part of $2 up to its last
# word-break character (bash keeps that part on the line).
_mh_quota_reply() {
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

_mh_quota() {
  local line=${COMP_LINE:0:COMP_POINT} cur='' prev=''
  local -a words
  read -ra words <<<"$line"
  if [[ -n $line && $line != *[[:space:]] ]]; then
    cur=${words[-1]}
    unset 'words[-1]'
  fi
  ((${#words[@]} > 0)) && prev=${words[-1]}
  COMPREPLY=()

  # The command, the spool and how many operands follow the command.
  local command='' operands=0 spool='' i
  for ((i = 1; i < ${#words[@]}; i++)); do
    case ${words[i]} in
    --spool) spool=${words[i + 1]}; ((i++)) ;;
    --spool=*) spool=${words[i]#--spool=} ;;
    --add | --warn-percent | --warn-messages) ((i++)) ;;
    -*) ;;
    *) if [[ -z $command ]]; then command=${words[i]}; else ((operands++)); fi ;;
    esac
  done
  [[ $spool == '~'/* ]] && spool=$HOME/${spool#'~/'}

  case $prev in
  --spool)
    compopt -o filenames 2>/dev/null
    local IFS=$'\n'
    mapfile -t COMPREPLY < <(compgen -d -- "$cur")
    return 0
    ;;
  --add | --warn-percent | --warn-messages) return 0 ;; # a size or a number
  esac

  if [[ $cur == -* ]]; then
    local own=''
    case $command in
    set) own='--add' ;;
    report) own='--warn-percent --warn-messages' ;;
    esac
    _mh_quota_reply "$own $_mh_quota_common_opts" "$cur"
    return 0
  fi
  case $command in
  '') _mh_quota_reply 'show set recalc report' "$cur" ;;
  show | recalc) ((operands == 0)) && _mh_quota_reply "$(_mh_quota_names "$spool" targets)" "$cur" ;;
  set) ((operands == 0)) && _mh_quota_reply "$(_mh_quota_names "$spool" domains)" "$cur" ;;
  esac
  return 0
}

complete -F _mh_quota mh-quota
