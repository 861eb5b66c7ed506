# mh-user.bash - bash completion for mh-user(8): commands, per-command options, the
# common options, and domain/account names read from the spool named by --spool DIR on
# the command line (else $MH_SPOOL) by asking mh-user itself (`domain list --names`,
# `list --names`), so the completion never parses spool files on its own.
# Words come from COMP_WORDS glued back together along COMP_LINE: bash cuts them at
# '@', ':' and '=' (COMP_WORDBREAKS), so an address would arrive in three pieces.

# The helpers shared by the mh-* completions sit next to this file (mailhost-common.bash
# says how); without them this file defines nothing.
source "$(dirname -- "${BASH_SOURCE[0]}")/mailhost-common.bash" || return 1

# Options per command path (top = no command yet). Common options come on top.
_mh_user_common_opts='--spool --json --quiet --help -q -h'
# -g: bash-completion sources this file inside a function; the table must stay global.
declare -gA _mh_user_opts=(
  [top]='--version'
  [domain]=''
  ["domain add"]='--quota --exist-ok'
  ["domain del"]='--force'
  ["domain list"]='--names'
  ["domain show"]=''
  [add]='--password-stdin --random-password --name --quota --exist-ok'
  [del]='--force'
  [passwd]='--password-stdin --random-password'
  [list]='--names'
  [show]=''
  [suspend]='--sending --reason'
  [resume]='--sending'
  [auth-test]=''
)
_mh_user_commands='domain add del passwd list show suspend resume auth-test'
declare -gA _mh_user_subcommands=([domain]='add del list show')

# Options that take a value: the next word is that value, not an operand.
_mh_user_takes_value() {
  case $1 in
  --spool | --quota | --name | --reason) return 0 ;;
  esac
  return 1
}

# The words of the line as the user sees them. Bash cuts COMP_WORDS at every
# COMP_WORDBREAKS character ("taro@ex" arrives as taro @ ex, "--spool=DIR" as
# --spool = DIR); pieces not parted by blanks are glued back where one side is made of
# '@', ':' or '=' (other breaks such as '>' are shell syntax, not part of an argument).
# Sets `words` (the words before the cursor's) and `cur` (that word, up to the cursor).
_mh_user_line_words() {
  local line=${COMP_LINE:0:COMP_POINT} pos=0 i piece blanks previous=''
  local -a glued=()
  for ((i = 0; i <= COMP_CWORD; i++)); do
    blanks=${line:pos}
    blanks=${blanks%%[![:space:]]*}
    ((pos += ${#blanks}))
    # The cursor's piece ends at the cursor, not where bash ends the word.
    if ((i == COMP_CWORD)); then piece=${line:pos}; else piece=${COMP_WORDS[i]}; fi
    if ((i > 0)) && [[ -z $blanks ]] &&
      { _mh_user_is_break_run "$piece" || _mh_user_is_break_run "$previous"; }; then
      glued[-1]+=$piece
    else
      glued+=("$piece")
    fi
    ((pos += ${#piece}))
    previous=$piece
  done
  ((${#glued[@]} > 0)) || glued=('')
  cur=${glued[-1]}
  words=("${glued[@]:0:${#glued[@]}-1}")
}

# True if $1 is a piece bash made of break characters alone ("@", "=", ":=").
_mh_user_is_break_run() {
  [[ -n $1 && -z ${1//[@:=]/} ]]
}

_mh_user() {
  # Walk the words before the cursor: the command path, the operands so far, the
  # spool, whether `--` has ended the options, and the option whose value is at the cursor.
  local cur prev path spool options_done value_of value
  local -a words operands
  _mailhost_read_command_line _mh_user_line_words _mh_user_takes_value _mh_user_subcommands
  spool=$(_mailhost_unquote "$spool")

  # The value of an option: "--spool DIR" or "--spool=DIR".
  if ((!options_done)); then
    if _mh_user_takes_value "$value_of"; then
      [[ $value_of == --spool ]] && _mailhost_reply_directories "$cur" "$value"
      return 0
    fi
  fi
  if ((!options_done)) && [[ $cur == -* ]]; then
    _mailhost_reply "${_mh_user_opts[${path:-top}]} $_mh_user_common_opts" "$cur"
    return 0
  fi

  # Operands: only the first operand of a command is a name from the spool.
  ((${#operands[@]} > 0)) && return 0
  case $path in
  '') _mailhost_reply "$_mh_user_commands" "$cur" ;;
  domain) _mailhost_reply "${_mh_user_subcommands[domain]}" "$cur" ;;
  'domain del' | 'domain show' | list)
    _mailhost_reply "$(_mailhost_names "$spool" domains)" "$cur"
    ;;
  add)
    # A new account: the name is free, the domain part must exist.
    if [[ $cur == *@* ]]; then
      local name=${cur%%@*} domain candidates=''
      for domain in $(_mailhost_names "$spool" domains); do
        candidates+=" $name@$domain"
      done
      _mailhost_reply "$candidates" "$cur"
    fi
    ;;
  del | passwd | show | suspend | resume | auth-test)
    _mailhost_reply "$(_mailhost_names "$spool" accounts)" "$cur"
    ;;
  esac
  return 0
}

complete -F _mh_user mh-user
