# mh-list.bash - bash completion for mh-list(8): commands, `members`/`moderators`
# subcommands, per-command options, the values of --policy, and names from the spool
# named by --spool DIR on the line (else $MH_SPOOL): lists (LIST@DOMAIN) by asking
# `mh-list list --names`, domains by `mh-user domain list --names`, for `members del` and
# `moderators del` the addresses `members list` / `moderators list` print, and for
# `approve`/`reject` the ids `pending --json` lists. The completion asks the tools and
# never reads spool files itself: libspool owns the layout and re-validates what it reads.
# Words come from COMP_LINE, not COMP_WORDS: '@' is in COMP_WORDBREAKS, so bash would cut
# an address in three. The reply is trimmed to what bash replaces.

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

# Splits $1 into shell words as the shell will pass them (quotes and backslashes
# removed); `_mh_list_words` gets every word, and `_mh_list_open` is 1 when the line ends
# inside a word (that last word is the one being completed).
_mh_list_split() {
  local line=$1 word='' quote='' in_word=0 i c
  _mh_list_words=()
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
      ((in_word)) && _mh_list_words+=("$word")
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
  _mh_list_open=$in_word
  ((in_word)) && _mh_list_words+=("$word")
  return 0
}

# COMPREPLY = the words of $1 that start with $2, minus the part of $2 up to its last
# word-break character (bash keeps that part on the line).
_mh_list_reply() {
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

# Runs tool $2 with `--spool $1` when $1 is set; the rest are its arguments. Errors (no
# spool, no such list, no tool) print nothing.
_mh_list_ask() {
  local spool=$1 tool=$2
  shift 2
  local -a opt=()
  [[ -n $spool ]] && opt=(--spool "$spool")
  command "$tool" "${opt[@]}" "$@" 2>/dev/null
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
  done < <(_mh_list_ask "$spool" mh-list "$which" list -- "$list")
  return 0
}

# The ids of the pending items of list $2, read from `mh-list pending --json` (one
# "id" key per item, as the tool prints it).
_mh_list_pending_ids() {
  local line
  while IFS= read -r line; do
    [[ $line =~ ^\ +\"id\":\ \"([0-9a-f]+)\" ]] && printf '%s\n' "${BASH_REMATCH[1]}"
  done < <(_mh_list_ask "$1" mh-list pending --json -- "$2")
  return 0
}

_mh_list() {
  local _mh_list_open
  local -a _mh_list_words
  _mh_list_split "${COMP_LINE:0:COMP_POINT}"
  local -a words=("${_mh_list_words[@]}")
  local cur=''
  if ((_mh_list_open)); then
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
        if [[ $word != *=* ]] && _mh_list_takes_value "$word"; then
          ((i++))
          [[ $word == --spool ]] && spool=${words[i]}
        fi
        continue
        ;;
      esac
    fi
    if [[ -z $path ]]; then
      path=$word
    elif [[ -n ${_mh_list_subcommands[$path]} && $path != *' '* ]]; then
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
    if _mh_list_takes_value "$value_of"; then
      case $value_of in
      --spool)
        compopt -o filenames 2>/dev/null
        local IFS=$'\n'
        mapfile -t COMPREPLY < <(compgen -d -- "$value")
        ;;
      --policy) _mh_list_reply 'members anyone moderators' "$value" ;;
      esac
      return 0
    fi
  fi
  if ((!options_done)) && [[ $cur == -* ]]; then
    _mh_list_reply "${_mh_list_opts[${path:-top}]} $_mh_list_common_opts" "$cur"
    return 0
  fi

  case $path in
  '') _mh_list_reply "$_mh_list_commands" "$cur" ;;
  members | moderators) _mh_list_reply "${_mh_list_subcommands[$path]}" "$cur" ;;
  create)
    # A new list: the name is free, the domain part must exist.
    if ((${#operands[@]} == 0)) && [[ $cur == *@* ]]; then
      local name=${cur%%@*} domain candidates=''
      for domain in $(_mh_list_ask "$spool" mh-user domain list --names); do
        candidates+=" $name@$domain"
      done
      _mh_list_reply "$candidates" "$cur"
    fi
    ;;
  list)
    ((${#operands[@]} == 0)) && _mh_list_reply "$(_mh_list_ask "$spool" mh-user domain list --names)" "$cur"
    ;;
  *)
    [[ -v _mh_list_opts[$path] ]] || return 0
    if ((${#operands[@]} == 0)); then
      _mh_list_reply "$(_mh_list_ask "$spool" mh-list list --names)" "$cur"
      return 0
    fi
    case $path in
    'members del' | 'moderators del')
      _mh_list_reply "$(_mh_list_roster "$spool" "${path%% *}" "${operands[@]}")" "$cur"
      ;;
    approve | reject)
      ((${#operands[@]} == 1)) && _mh_list_reply "$(_mh_list_pending_ids "$spool" "${operands[0]}")" "$cur"
      ;;
    esac
    ;;
  esac
  return 0
}

complete -F _mh_list mh-list
