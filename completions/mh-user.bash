# mh-user.bash - bash completion for mh-user(8): commands, per-command options, the
# common options, and domain/account names read from the spool named by --spool DIR on
# the command line (else $MH_SPOOL) by asking mh-user itself (`domain list --names`,
# `list --names`), so the completion never parses spool files on its own.
# Words come from COMP_WORDS glued back together along COMP_LINE: bash cuts them at
# '@', ':' and '=' (COMP_WORDBREAKS), so an address would arrive in three pieces.

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
_mh_user_domain_commands='add del list show'

# Options that take a value: the next word is that value, not an operand.
_mh_user_takes_value() {
  case $1 in
  --spool | --quota | --name | --reason) return 0 ;;
  esac
  return 1
}

# Prints names from the spool, one per line: `_mh_user_names SPOOL domain list` or
# `_mh_user_names SPOOL list`. Errors (no spool, no mh-user) print nothing.
_mh_user_names() {
  local spool=$1
  shift
  if [[ -n $spool ]]; then
    command mh-user --spool "$spool" "$@" --names 2>/dev/null
  else
    command mh-user "$@" --names 2>/dev/null
  fi
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

# Bash replaces only the end of the current word after its last COMP_WORDBREAKS
# character: "/srv" of "--spool=/srv", but "@ex" of "taro@ex": while hostcomplete is on
# (the default) readline hands '@' over with the text, as a "special prefix". Each reply
# loses what bash keeps on the line, so `show taro@ex` becomes `show taro@example.jp`.
_mh_user_trim_replies() {
  local word=$1 breaks=${COMP_WORDBREAKS//[^@:=]/}
  [[ -n $breaks && $word == *["$breaks"]* ]] || return 0
  local kept=${word%"${word##*["$breaks"]}"}
  shopt -q hostcomplete && kept=${kept%@}
  [[ -n $kept ]] && COMPREPLY=("${COMPREPLY[@]#"$kept"}")
  return 0
}

# COMPREPLY = the words of $1 that start with $2, trimmed to what bash replaces.
_mh_user_reply() {
  local IFS=$' \t\n'
  mapfile -t COMPREPLY < <(compgen -W "$1" -- "$2")
  _mh_user_trim_replies "$2"
}

# A spool path as the shell will pass it: outer quotes and backslashes removed, ~/ expanded.
_mh_user_unquote() {
  local text=$1 plain='' i
  case $text in
  \'*\') text=${text:1:${#text}-2} ;;
  \"*\") text=${text:1:${#text}-2} ;;
  *)
    for ((i = 0; i < ${#text}; i++)); do
      [[ ${text:i:1} == \\ ]] && ((i++))
      plain+=${text:i:1}
    done
    text=$plain
    ;;
  esac
  [[ $text == '~'/* ]] && text=$HOME/${text#'~/'}
  printf '%s' "$text"
}

# Directories for an option value; $1 = the current word, $2 = its value part.
_mh_user_reply_directories() {
  compopt -o filenames 2>/dev/null
  local IFS=$'\n' dir
  mapfile -t COMPREPLY < <(compgen -d -- "$2")
  # "--spool=/sr": the replies are whole words like the one being completed.
  local option_part=${1%"$2"}
  if [[ -n $option_part ]]; then
    for dir in "${!COMPREPLY[@]}"; do COMPREPLY[dir]=$option_part${COMPREPLY[dir]}; done
  fi
  _mh_user_trim_replies "$1"
}

_mh_user() {
  local cur
  local -a words
  _mh_user_line_words
  local prev=''
  ((${#words[@]} > 0)) && prev=${words[-1]}
  COMPREPLY=()

  # Walk the words before the cursor: the command path, the operands so far, the
  # spool, and whether `--` has ended the options.
  local spool='' path='' operands=0 options_done=0 i word
  for ((i = 1; i < ${#words[@]}; i++)); do
    word=${words[i]}
    if ((!options_done)); then
      case $word in
      --) options_done=1; continue ;;
      --spool=*) spool=${word#--spool=}; continue ;;
      -*)
        if [[ $word != *=* ]] && _mh_user_takes_value "$word"; then
          ((i++))
          [[ $word == --spool ]] && spool=${words[i]}
        fi
        continue
        ;;
      esac
    fi
    if [[ -z $path ]]; then
      path=$word
    elif [[ $path == domain ]]; then
      path="domain $word"
    else
      ((operands++))
    fi
  done
  spool=$(_mh_user_unquote "$spool")

  # The value of an option: "--spool DIR" or "--spool=DIR".
  if ((!options_done)); then
    local value_of=$prev value=$cur
    if [[ $cur == --*=* ]]; then
      value_of=${cur%%=*}
      value=${cur#*=}
    fi
    if _mh_user_takes_value "$value_of"; then
      [[ $value_of == --spool ]] && _mh_user_reply_directories "$cur" "$value"
      return 0
    fi
  fi
  if ((!options_done)) && [[ $cur == -* ]]; then
    _mh_user_reply "${_mh_user_opts[${path:-top}]} $_mh_user_common_opts" "$cur"
    return 0
  fi

  # Operands: only the first operand of a command is a name from the spool.
  ((operands > 0)) && return 0
  case $path in
  '') _mh_user_reply "$_mh_user_commands" "$cur" ;;
  domain) _mh_user_reply "$_mh_user_domain_commands" "$cur" ;;
  'domain del' | 'domain show' | list)
    _mh_user_reply "$(_mh_user_names "$spool" domain list)" "$cur"
    ;;
  add)
    # A new account: the name is free, the domain part must exist.
    if [[ $cur == *@* ]]; then
      local name=${cur%%@*} domain candidates=''
      for domain in $(_mh_user_names "$spool" domain list); do
        candidates+=" $name@$domain"
      done
      _mh_user_reply "$candidates" "$cur"
    fi
    ;;
  del | passwd | show | suspend | resume | auth-test)
    _mh_user_reply "$(_mh_user_names "$spool" list)" "$cur"
    ;;
  esac
  return 0
}

complete -F _mh_user mh-user
