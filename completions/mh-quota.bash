# mh-quota.bash — bash completion for mh-quota(8): commands, options, and domain and
# account names read from the spool named by --spool DIR on the line (else $MH_SPOOL)
# by asking mh-user itself (`domain list --names`, `list --names`).
# Words come from COMP_LINE, not COMP_WORDS: '@' is in COMP_WORDBREAKS, so bash would
# cut an address in three; the reply is trimmed to what bash replaces (after the break).

# The helpers shared by the mh-* completions sit next to this file (mailhost-common.bash
# says how); without them this file defines nothing.
source "$(dirname -- "${BASH_SOURCE[0]}")/mailhost-common.bash" || return 1

_mh_quota_common_opts='--spool --json --quiet -q --help -h --version'

_mh_quota() {
  local cur prev
  local -a words
  _mailhost_blank_words
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
  --spool) _mailhost_reply_directories "$cur" "$cur"; return 0 ;;
  --add | --warn-percent | --warn-messages) return 0 ;; # a size or a number
  esac

  if [[ $cur == -* ]]; then
    local own=''
    case $command in
    set) own='--add' ;;
    report) own='--warn-percent --warn-messages' ;;
    esac
    _mailhost_reply "$own $_mh_quota_common_opts" "$cur"
    return 0
  fi
  case $command in
  '') _mailhost_reply 'show set recalc report' "$cur" ;;
  show | recalc) ((operands == 0)) && _mailhost_reply "$(_mailhost_names "$spool" domains accounts)" "$cur" ;;
  set) ((operands == 0)) && _mailhost_reply "$(_mailhost_names "$spool" domains)" "$cur" ;;
  esac
  return 0
}

complete -F _mh_quota mh-quota
