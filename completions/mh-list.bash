# mh-list.bash - bash completion for mh-list(8): commands, `members`/`moderators`
# subcommands, per-command options, the values of --policy, and names from the spool
# named by --spool DIR on the line (else $MH_SPOOL): lists (LIST@DOMAIN) by asking
# `mh-list list --names`, domains by `mh-user domain list --names`, for `members del` and
# `moderators del` the addresses `members list` / `moderators list` print, and for
# `approve`/`reject` the ids `pending --json` lists. The completion asks the tools and
# never reads spool files itself: libspool owns the layout and re-validates what it reads.
# Words come from COMP_LINE, not COMP_WORDS: '@' is in COMP_WORDBREAKS, so bash would cut
# an address in three. The reply is trimmed to what bash replaces.

# The helpers shared by the mh-* completions sit next to this file (mailhost-common.bash
# says how); without them this file defines nothing.
source "$(dirname -- "${BASH_SOURCE[0]}")/mailhost-common.bash" || return 1

_mh_list_common_opts='--spool --json --quiet --help -q -h'
# -g: bash-completion sources this file inside a function; the tables must stay global.
declare -gA _mh_list_opts=(
  [top]='--version'
  [create]='--policy --admin --max-size --exist-ok'
  [delete]='--force'
  [show]=''
  [set]='--policy --admin --max-size --subject-tag --bomb --bomb-block'
  [list]='--names'
  [members]=''
  ["members add"]=''
  ["members del"]=''
  ["members list"]=''
  [moderators]=''
  ["moderators add"]=''
  ["moderators del"]=''
  ["moderators list"]=''
  [pending]=''
  [approve]=''
  [reject]=''
  [archive]=''
)
_mh_list_commands='create delete show set list members moderators pending approve reject archive'
declare -gA _mh_list_subcommands=(
  [members]='add del list'
  [moderators]='add del list'
)

# Options that take a value: the next word is that value, not an operand.
_mh_list_takes_value() {
  case $1 in
  --spool | --policy | --admin | --max-size | --subject-tag | --bomb | --bomb-block) return 0 ;;
  esac
  return 1
}

# The first word of each line `mh-list $2 list LIST` prints ($2 = members or moderators;
# a disabled member's line goes on with "(disabled: …)"), minus the operands in $4…
_mh_list_roster() {
  local spool=$1 which=$2 list=$3 line address typed
  shift 3
  while IFS= read -r line; do
    address=${line%% *}
    [[ -n $address ]] || continue
    for typed in "$@"; do
      [[ ${typed,,} == "${address,,}" ]] && continue 2
    done
    printf '%s\n' "$address"
  done < <(_mailhost_ask "$spool" mh-list "$which" list -- "$list")
  return 0
}

# The ids of the pending items of list $2, read from `mh-list pending --json` (one
# "id" key per item, as the tool prints it).
_mh_list_pending_ids() {
  local line
  while IFS= read -r line; do
    [[ $line =~ ^\ +\"id\":\ \"([0-9a-f]+)\" ]] && printf '%s\n' "${BASH_REMATCH[1]}"
  done < <(_mailhost_ask "$1" mh-list pending --json -- "$2")
  return 0
}

_mh_list() {
  # The words, the command path, the operands after it, the spool, whether `--` ended
  # options, and the option whose value is at the cursor.
  local cur prev path spool options_done value_of value
  local -a words operands
  _mailhost_read_command_line _mailhost_shell_words _mh_list_takes_value _mh_list_subcommands
  [[ $spool == '~'/* ]] && spool=$HOME/${spool#'~/'}

  # The value of an option: "--opt VALUE" or "--opt=VALUE".
  if ((!options_done)); then
    if _mh_list_takes_value "$value_of"; then
      case $value_of in
      --spool) _mailhost_reply_directories "$cur" "$value" ;;
      --policy) _mailhost_reply 'members anyone moderators' "$value" ;;
      esac
      return 0
    fi
  fi
  if ((!options_done)) && [[ $cur == -* ]]; then
    _mailhost_reply "${_mh_list_opts[${path:-top}]} $_mh_list_common_opts" "$cur"
    return 0
  fi

  case $path in
  '') _mailhost_reply "$_mh_list_commands" "$cur" ;;
  members | moderators) _mailhost_reply "${_mh_list_subcommands[$path]}" "$cur" ;;
  create)
    # A new list: the name is free, the domain part must exist.
    if ((${#operands[@]} == 0)) && [[ $cur == *@* ]]; then
      local name=${cur%%@*} domain candidates=''
      for domain in $(_mailhost_names "$spool" domains); do
        candidates+=" $name@$domain"
      done
      _mailhost_reply "$candidates" "$cur"
    fi
    ;;
  list)
    ((${#operands[@]} == 0)) && _mailhost_reply "$(_mailhost_names "$spool" domains)" "$cur"
    ;;
  *)
    [[ -v _mh_list_opts[$path] ]] || return 0
    if ((${#operands[@]} == 0)); then
      _mailhost_reply "$(_mailhost_ask "$spool" mh-list list --names)" "$cur"
      return 0
    fi
    case $path in
    'members del' | 'moderators del')
      _mailhost_reply "$(_mh_list_roster "$spool" "${path%% *}" "${operands[@]}")" "$cur"
      ;;
    approve | reject)
      ((${#operands[@]} == 1)) && _mailhost_reply "$(_mh_list_pending_ids "$spool" "${operands[0]}")" "$cur"
      ;;
    esac
    ;;
  esac
  return 0
}

complete -F _mh_list mh-list
