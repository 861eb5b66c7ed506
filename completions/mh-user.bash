# mh-user.bash - bash completion for mh-user(8): commands, per-command options, the
# common options, and domain/account names read from the spool named by --spool DIR on
# the command line (else $MH_SPOOL) by asking mh-user itself (`domain list --names`,
# `list --names`), so the completion never parses spool files on its own.

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

# COMPREPLY = the words of $1 that start with $2.
_mh_user_reply() {
  local IFS=$' \t\n'
  mapfile -t COMPREPLY < <(compgen -W "$1" -- "$2")
}

_mh_user() {
  local cur=${COMP_WORDS[COMP_CWORD]}
  local prev=''
  ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
  COMPREPLY=()

  # Walk the words before the cursor: the command path, the operands so far, the
  # spool, and whether `--` has ended the options.
  local spool='' path='' operands=0 options_done=0 i word
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=${COMP_WORDS[i]}
    if ((!options_done)); then
      case $word in
      --) options_done=1; continue ;;
      --spool=*) spool=${word#--spool=}; continue ;;
      -*)
        if _mh_user_takes_value "$word"; then
          # "--spool=DIR" may arrive split as "--spool" "=" "DIR" (= is a word break).
          [[ ${COMP_WORDS[i + 1]} == = ]] && ((i++))
          ((i++))
          [[ $word == --spool && $i -lt $COMP_CWORD ]] && spool=${COMP_WORDS[i]}
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
  [[ $spool == '~'/* ]] && spool=$HOME/${spool#'~/'}

  # The value of an option ("--spool DIR", or "--spool=DIR" split at '=').
  if [[ $cur == = ]] && _mh_user_takes_value "$prev"; then
    cur=''
  elif [[ $prev == = && $COMP_CWORD -ge 2 ]]; then
    prev=${COMP_WORDS[COMP_CWORD - 2]}
  fi
  if ((!options_done)) && _mh_user_takes_value "$prev"; then
    if [[ $prev == --spool ]]; then
      compopt -o filenames 2>/dev/null
      local IFS=$'\n'
      mapfile -t COMPREPLY < <(compgen -d -- "$cur")
    fi
    return 0
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
