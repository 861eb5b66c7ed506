# mh-filter.bash - bash completion for mh-filter(8): commands, per-command options, the
# values of --action, account addresses read from the spool named by --spool DIR on the
# line (else $MH_SPOOL) by asking mh-user (`list --names`), and for `forward del` and
# `rule del` the numbers `mh-filter show ADDRESS --json` lists, so the completion never
# parses spool files on its own.
# Words come from COMP_LINE, not COMP_WORDS: '@' is in COMP_WORDBREAKS, so bash would cut
# an address in three, and a COND is one quoted argument with spaces ('subject contains
# x'), which COMP_WORDS would not keep whole. The reply is trimmed to what bash replaces.

# The helpers shared by the mh-* completions sit next to this file (mailhost-common.bash
# says how); without them this file defines nothing.
source "$(dirname -- "${BASH_SOURCE[0]}")/mailhost-common.bash" || return 1

_mh_filter_common_opts='--spool --json --quiet --help -q -h'
# -g: bash-completion sources this file inside a function; the table must stay global.
declare -gA _mh_filter_opts=(
  [top]='--version'
  [show]=''
  [forward]=''
  ["forward add"]='--to --if --no-keep'
  ["forward del"]='--all'
  [rule]=''
  ["rule add"]='--if --action'
  ["rule del"]='--all'
  [autoreply]=''
  ["autoreply set"]='--message-file --subject --days'
  ["autoreply off"]=''
  [spam]=''
  ["spam set"]='--action --tag'
  ["spam off"]=''
  [test]='--sender'
  [export]='--sieve'
)
_mh_filter_commands='show forward rule autoreply spam test export'
declare -gA _mh_filter_subcommands=(
  [forward]='add del'
  [rule]='add del'
  [autoreply]='set off'
  [spam]='set off'
)

# Options that take a value: the next word is that value, not an operand.
_mh_filter_takes_value() {
  case $1 in
  --spool | --to | --if | --action | --message-file | --subject | --days | --tag | --sender) return 0 ;;
  esac
  return 1
}

# The numbers of the forward profiles ($3 = forward) or rules ($3 = rules) of account
# $2 in spool $1, read from `mh-filter show --json` (keys at two spaces, the objects of
# the lists' items at six, as the tool prints them).
_mh_filter_numbers() {
  local line section=''
  while IFS= read -r line; do
    if [[ $line =~ ^\ \ \"([a-z_]+)\": ]]; then
      section=${BASH_REMATCH[1]}
    elif [[ $section == "$3" && $line =~ ^\ {6}\"number\":\ ([0-9]+) ]]; then
      printf '%s\n' "${BASH_REMATCH[1]}"
    fi
  done < <(_mailhost_ask "$1" mh-filter show "$2" --json)
  return 0
}

_mh_filter() {
  # The words, the command path, the operands after it, the spool, whether `--` ended
  # options, and the option whose value is at the cursor.
  local cur prev path spool options_done value_of value
  local -a words operands
  _mailhost_read_command_line _mailhost_shell_words _mh_filter_takes_value _mh_filter_subcommands
  [[ $spool == '~'/* ]] && spool=$HOME/${spool#'~/'}

  # The value of an option: "--opt VALUE" or "--opt=VALUE".
  if ((!options_done)); then
    if _mh_filter_takes_value "$value_of"; then
      case $value_of in
      --spool) _mailhost_reply_directories "$cur" "$value" ;;
      --message-file)
        compopt -o filenames 2>/dev/null
        local IFS=$'\n'
        mapfile -t COMPREPLY < <(compgen -f -- "$value")
        [[ -z $value || $value == - ]] && COMPREPLY=(- "${COMPREPLY[@]}")
        ;;
      --action)
        case $path in
        'rule add') _mailhost_reply 'delete bounce' "$value" ;;
        'spam set') _mailhost_reply 'tag delete' "$value" ;;
        esac
        ;;
      esac
      return 0
    fi
  fi
  if ((!options_done)) && [[ $cur == -* ]]; then
    _mailhost_reply "${_mh_filter_opts[${path:-top}]} $_mh_filter_common_opts" "$cur"
    return 0
  fi

  case $path in
  '') _mailhost_reply "$_mh_filter_commands" "$cur" ;;
  forward | rule | autoreply | spam) _mailhost_reply "${_mh_filter_subcommands[$path]}" "$cur" ;;
  *)
    [[ -v _mh_filter_opts[$path] ]] || return 0
    if ((${#operands[@]} == 0)); then
      _mailhost_reply "$(_mailhost_names "$spool" accounts)" "$cur"
    elif ((${#operands[@]} == 1)) && [[ $path == 'forward del' || $path == 'rule del' ]]; then
      local list=forward
      [[ $path == 'rule del' ]] && list=rules
      _mailhost_reply "$(_mh_filter_numbers "$spool" "${operands[0]}" "$list")" "$cur"
    fi
    ;;
  esac
  return 0
}

complete -F _mh_filter mh-filter
