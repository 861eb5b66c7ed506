# mh-purge.bash — bash completion for mh-purge(8): options, usual ages and sizes, and
# targets (domains and addresses) read from the spool named by --spool DIR on the line
# (else $MH_SPOOL) by asking mh-user itself (`domain list --names`, `list --names`).
# Words come from COMP_LINE, not COMP_WORDS: '@' is in COMP_WORDBREAKS, so bash would
# cut an address in three; the reply is trimmed to what bash replaces (after the break).

# The helpers shared by the mh-* completions sit next to this file (mailhost-common.bash
# says how); without them this file defines nothing.
source "$(dirname -- "${BASH_SOURCE[0]}")/mailhost-common.bash" || return 1

_mh_purge_opts='--all-domains --older-than --larger-than --uid --everything --dry-run -n --list
  --spool --json --quiet -q --help -h --version'

_mh_purge() {
  local cur prev
  local -a words
  _mailhost_blank_words
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
  --spool) _mailhost_reply_directories "$cur" "$cur" ;;
  --older-than) _mailhost_reply '1d 7d 30d 90d 180d 365d' "$cur" ;;
  --larger-than) _mailhost_reply '1M 5M 10M 30M 100M' "$cur" ;;
  --uid) ;; # UIDLs: see mh-purge ADDRESS --list
  *)
    if [[ $cur == -* ]]; then
      _mailhost_reply "$_mh_purge_opts" "$cur"
    else
      _mailhost_reply "$(_mailhost_names "$spool" domains accounts)" "$cur"
    fi
    ;;
  esac
  return 0
}

complete -F _mh_purge mh-purge
