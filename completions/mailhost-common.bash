# mailhost-common.bash - helpers shared by the mh-* bash completions: cutting the line
# into words, asking a tool for names from the spool (the completions never read spool
# files themselves: libspool owns the layout), and replying so bash keeps the right part.
# How it is found: each mh-TOOL.bash sources it from its own directory, which is
# completions/ in the source tree and /usr/share/bash-completion/completions/ once
# installed (there the scripts are named after their tools; cmake/Packaging.cmake).
# bash-completion's on-demand loader sources a file only for a command of the same name
# (less ".bash", or less a leading "_"); no command is called mailhost-common, and this
# file registers nothing with `complete`, so even then it would complete nothing.
# Functions said to set variables set the caller's locals of those names (bash's dynamic
# scope), so the caller declares them.

# Runs tool $2 with `--spool $1` when $1 is set; the rest are its arguments. Errors (no
# spool, no such name, no tool on PATH) print nothing.
_mailhost_ask() {
  local spool=$1 tool=$2
  shift 2
  local -a opt=()
  [[ -n $spool ]] && opt=(--spool "$spool")
  command "$tool" "${opt[@]}" "$@" 2>/dev/null
}

# Names from spool $1 ('' = $MH_SPOOL), one per line, as mh-user lists them: $2… are
# `domains` and/or `accounts`, listed in that order.
_mailhost_names() {
  local spool=$1 kind
  shift
  for kind in "$@"; do
    case $kind in
    domains) _mailhost_ask "$spool" mh-user domain list --names ;;
    accounts) _mailhost_ask "$spool" mh-user list --names ;;
    esac
  done
  return 0
}

# Bash replaces only the end of the current word after its last COMP_WORDBREAKS
# character: "/srv" of "--spool=/srv", but "@ex" of "taro@ex": while hostcomplete is on
# (the default) readline hands '@' over with the text, as a "special prefix". Each reply
# loses what bash keeps on the line ($1 = the word being completed).
_mailhost_trim_replies() {
  local word=$1 breaks=${COMP_WORDBREAKS//[^@:=]/}
  [[ -n $breaks && $word == *["$breaks"]* ]] || return 0
  local kept=${word%"${word##*["$breaks"]}"}
  shopt -q hostcomplete && kept=${kept%@}
  [[ -n $kept ]] && COMPREPLY=("${COMPREPLY[@]#"$kept"}")
  return 0
}

# COMPREPLY = the words of $1 that start with $2, trimmed to what bash replaces.
_mailhost_reply() {
  local IFS=$' \t\n'
  mapfile -t COMPREPLY < <(compgen -W "$1" -- "$2")
  _mailhost_trim_replies "$2"
}

# Directories for an option value; $1 = the current word, $2 = its value part.
_mailhost_reply_directories() {
  compopt -o filenames 2>/dev/null
  local IFS=$'\n' dir
  mapfile -t COMPREPLY < <(compgen -d -- "$2")
  # "--spool=/sr": the replies are whole words like the one being completed.
  local option_part=${1%"$2"}
  if [[ -n $option_part ]]; then
    for dir in "${!COMPREPLY[@]}"; do COMPREPLY[dir]=$option_part${COMPREPLY[dir]}; done
  fi
  _mailhost_trim_replies "$1"
}

# A spool path as the shell will pass it: outer quotes and backslashes removed, ~/ expanded.
_mailhost_unquote() {
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

# Sets `words` (the words before the cursor's), `cur` (the word at the cursor, '' on a
# blank) and `prev`, cutting COMP_LINE at blanks only: for tools whose words hold no
# quotes or spaces ('@', ':' and '=' in COMP_WORDBREAKS would cut COMP_WORDS apart).
_mailhost_blank_words() {
  local line=${COMP_LINE:0:COMP_POINT}
  cur='' prev=''
  read -ra words <<<"$line"
  if [[ -n $line && $line != *[[:space:]] ]]; then
    cur=${words[-1]}
    unset 'words[-1]'
  fi
  ((${#words[@]} > 0)) && prev=${words[-1]}
  return 0
}

# Sets `words`, `cur` and `prev` as _mailhost_blank_words does, but cuts COMP_LINE into
# shell words as the shell will pass them (quotes and backslashes removed): for tools
# whose operands may be one quoted argument with spaces ('subject contains x').
_mailhost_shell_words() {
  local line=${COMP_LINE:0:COMP_POINT} word='' quote='' in_word=0 i c
  words=() cur='' prev=''
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
      ((in_word)) && words+=("$word")
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
  ((in_word)) && cur=$word
  ((${#words[@]} > 0)) && prev=${words[-1]}
  return 0
}

# Walks `words` after the command name for tools with a command path of one or two words
# (`forward add`, `domain del`): sets `path`, `operands` (the words after the path),
# `spool` (as typed) and `options_done` (1 after `--`). $1 = a function that is true
# for an option taking a value (the next word is that value), $2 = the name of the
# tool's table of subcommands per command (`forward` → 'add del').
_mailhost_walk_path() {
  local takes_value=$1 i word
  local -n _mailhost_subcommands=$2
  path='' spool='' options_done=0 operands=()
  for ((i = 1; i < ${#words[@]}; i++)); do
    word=${words[i]}
    if ((!options_done)); then
      case $word in
      --) options_done=1; continue ;;
      --spool=*) spool=${word#--spool=}; continue ;;
      -*)
        if [[ $word != *=* ]] && "$takes_value" "$word"; then
          ((i++))
          [[ $word == --spool ]] && spool=${words[i]}
        fi
        continue
        ;;
      esac
    fi
    if [[ -z $path ]]; then
      path=$word
    elif [[ $path != *' '* && -n ${_mailhost_subcommands[$path]} ]]; then
      path="$path $word"
    else
      operands+=("$word")
    fi
  done
  return 0
}

# The start of a completion for a tool with a command path: cuts the line with function
# $1 (which sets `words` and `cur`), walks it (_mailhost_walk_path with $2 and $3), and
# sets `prev`, `value_of` and `value`: for "--opt VALUE" or "--opt=VALUE" at the cursor,
# the option and what is typed of its value (else value_of is $prev). COMPREPLY is empty.
_mailhost_read_command_line() {
  "$1"
  prev=''
  ((${#words[@]} > 0)) && prev=${words[-1]}
  COMPREPLY=()
  _mailhost_walk_path "$2" "$3"
  value_of=$prev value=$cur
  if [[ $cur == --*=* ]]; then
    value_of=${cur%%=*}
    value=${cur#*=}
  fi
  return 0
}
