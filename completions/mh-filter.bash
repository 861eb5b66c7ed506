# mh-filter.bash - bash completion for mh-filter(8): commands, per-command options, the
# values of --action, account addresses read from the spool named by --spool DIR on the
# line (else $MH_SPOOL) by asking mh-user (`list --names`), and for `forward del` and
# `rule del` the numbers `mh-filter show ADDRESS --json` lists, so the completion never
# parses spool files on its own.
# Words come from COMP_LINE, not COMP_WORDS: '@' is in COMP_WORDBREAKS, so bash would cut
# an address in three, and a COND is one quoted argument with spaces ('subject contains
# x'), which COMP_WORDS would not keep whole. The reply is trimmed to what bash replaces.

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

# Splits $1 into shell words as the shell will pass them (quotes and backslashes
# removed); `_mh_filter_words` gets every word, and `_mh_filter_open` is 1 when the line
# ends inside a word (that last word is the one being completed).
_mh_filter_split() {
  local line=$1 word='' quote='' in_word=0 i c
  _mh_filter_words=()
  for ((i = 0; i < ${#line}; i++)); do
    c=${line:i:1}
    if [[ -n $quote ]]; then
      if [[ $c == "$quote" ]]; then
        quote=''
      elif [[ $quote == '"' && $c == \\ && $((i + 1)) -lt ${#line} ]]; then
        ((i++))
        word+=${line:i:1}
      else
        word+=$c
      fi
      continue
    fi
    case $c in
    [[:space:]])
      ((in_word)) && _mh_filter_words+=("$word")
      word='' in_word=0
      ;;
    \' | \") quote=$c in_word=1 ;;
    \\)
      ((i++))
      word+=${line:i:1} in_word=1
      ;;
    *) word+=$c in_word=1 ;;
    esac
  done
  _mh_filter_open=$in_word
  ((in_word)) && _mh_filter_words+=("$word")
  return 0
}

# COMPREPLY = the words of $1 that start with $2, minus the part of $2 up to its last
# word-break character (bash keeps that part on the line).
_mh_filter_reply() {
  local IFS=$' \t\n'
  mapfile -t COMPREPLY < <(compgen -W "$1" -- "$2")
  local breaks=${COMP_WORDBREAKS//[^@:=]/}
  if [[ -n $breaks && $2 == *["$breaks"]* ]]; then
    local prefix=${2%"${2##*["$breaks"]}"}
    # With hostcomplete on (the default) readline hands '@' over with the text.
    shopt -q hostcomplete && prefix=${prefix%@}
    [[ -n $prefix ]] && COMPREPLY=("${COMPREPLY[@]#"$prefix"}")
  fi
  return 0
}

# The accounts of the spool $1 ('' = the default), one per line; nothing on any error.
_mh_filter_addresses() {
  local -a spool=()
  [[ -n $1 ]] && spool=(--spool "$1")
  command mh-user "${spool[@]}" list --names 2>/dev/null
}

# The numbers of the forward profiles ($3 = forward) or rules ($3 = rules) of account
# $2 in spool $1, read from `mh-filter show --json` (keys at two spaces, the objects of
# the lists' items at six, as the tool prints them).
_mh_filter_numbers() {
  local -a spool=()
  [[ -n $1 ]] && spool=(--spool "$1")
  local line section=''
  while IFS= read -r line; do
    if [[ $line =~ ^\ \ \"([a-z_]+)\": ]]; then
      section=${BASH_REMATCH[1]}
    elif [[ $section == "$3" && $line =~ ^\ {6}\"number\":\ ([0-9]+) ]]; then
      printf '%s\n' "${BASH_REMATCH[1]}"
    fi
  done < <(command mh-filter "${spool[@]}" show "$2" --json 2>/dev/null)
  return 0
}

_mh_filter() {
  local _mh_filter_open
  local -a _mh_filter_words
  _mh_filter_split "${COMP_LINE:0:COMP_POINT}"
  local -a words=("${_mh_filter_words[@]}")
  local cur=''
  if ((_mh_filter_open)); then
    cur=${words[-1]}
    unset 'words[-1]'
  fi
  local prev=''
  ((${#words[@]} > 0)) && prev=${words[-1]}
  COMPREPLY=()

  # The command path, the operands after it, the spool, and whether `--` ended options.
  local path='' spool='' options_done=0 i word
  local -a operands=()
  for ((i = 1; i < ${#words[@]}; i++)); do
    word=${words[i]}
    if ((!options_done)); then
      case $word in
      --) options_done=1; continue ;;
      --spool=*) spool=${word#--spool=}; continue ;;
      -*)
        if [[ $word != *=* ]] && _mh_filter_takes_value "$word"; then
          ((i++))
          [[ $word == --spool ]] && spool=${words[i]}
        fi
        continue
        ;;
      esac
    fi
    if [[ -z $path ]]; then
      path=$word
    elif [[ -n ${_mh_filter_subcommands[$path]} && $path != *' '* ]]; then
      path="$path $word"
    else
      operands+=("$word")
    fi
  done
  [[ $spool == '~'/* ]] && spool=$HOME/${spool#'~/'}

  # The value of an option: "--opt VALUE" or "--opt=VALUE".
  if ((!options_done)); then
    local value_of=$prev value=$cur
    if [[ $cur == --*=* ]]; then
      value_of=${cur%%=*}
      value=${cur#*=}
    fi
    if _mh_filter_takes_value "$value_of"; then
      case $value_of in
      --spool)
        compopt -o filenames 2>/dev/null
        local IFS=$'\n'
        mapfile -t COMPREPLY < <(compgen -d -- "$value")
        ;;
      --message-file)
        compopt -o filenames 2>/dev/null
        local IFS=$'\n'
        mapfile -t COMPREPLY < <(compgen -f -- "$value")
        [[ -z $value || $value == - ]] && COMPREPLY=(- "${COMPREPLY[@]}")
        ;;
      --action)
        case $path in
        'rule add') _mh_filter_reply 'delete bounce' "$value" ;;
        'spam set') _mh_filter_reply 'tag delete' "$value" ;;
        esac
        ;;
      esac
      return 0
    fi
  fi
  if ((!options_done)) && [[ $cur == -* ]]; then
    _mh_filter_reply "${_mh_filter_opts[${path:-top}]} $_mh_filter_common_opts" "$cur"
    return 0
  fi

  case $path in
  '') _mh_filter_reply "$_mh_filter_commands" "$cur" ;;
  forward | rule | autoreply | spam) _mh_filter_reply "${_mh_filter_subcommands[$path]}" "$cur" ;;
  *)
    [[ -v _mh_filter_opts[$path] ]] || return 0
    if ((${#operands[@]} == 0)); then
      _mh_filter_reply "$(_mh_filter_addresses "$spool")" "$cur"
    elif ((${#operands[@]} == 1)) && [[ $path == 'forward del' || $path == 'rule del' ]]; then
      local list=forward
      [[ $path == 'rule del' ]] && list=rules
      _mh_filter_reply "$(_mh_filter_numbers "$spool" "${operands[0]}" "$list")" "$cur"
    fi
    ;;
  esac
  return 0
}

complete -F _mh_filter mh-filter
