# mh-serve.bash — bash completion for mh-serve(8): its options, directories after
# --spool, the services after --stdio (smtp, pop3), usual durations after
# --shutdown-grace and --wait, and the `queue` commands (list, show, retry, delete) with
# their options and queue ids. The ids come from the spool named by --spool on the line
# (else $MH_SPOOL) by asking mh-serve itself (`queue list --ids`), so the completion never
# reads queue files on its own. The values of --client-ip, --threads and
# --delivery-threads are left to the user.
# Words come from COMP_LINE, not COMP_WORDS, as in mh-quota.bash: ':' and '=' are in
# COMP_WORDBREAKS, so bash would cut "--stdio=pop3" or an IPv6 address apart; a reply
# is trimmed to what bash replaces (after the last break).

_mh_serve_opts='--spool --check-config --stdio --client-ip --threads --delivery-threads
  --shutdown-grace --json --quiet -q --help -h --version'
_mh_serve_services='smtp pop3'
_mh_serve_durations='5s 10s 30s 1m 5m'
# The queue commands: options common to all of them, and each one's own.
_mh_serve_common_opts='--spool --json --quiet -q --help -h'
_mh_serve_queue_commands='list show retry delete'
_mh_serve_queue_opts() {
  case $1 in
  list) printf '%s' '--ids' ;;
  retry) printf '%s' '--all --wait' ;;
  delete) printf '%s' '--all --bounce --wait' ;;
  esac
}

# A spool path as the shell will pass it: outer quotes and backslashes removed, ~/ expanded.
_mh_serve_unquote() {
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

# The queue ids of spool $1 ("" = $MH_SPOOL), one per line; nothing on any error.
_mh_serve_queue_ids() {
  if [[ -n $1 ]]; then
    command mh-serve --spool "$1" queue list --ids 2>/dev/null
  else
    command mh-serve queue list --ids 2>/dev/null
  fi
}

# COMPREPLY = the words of $1 that start with $2, minus the part of $2 up to its last
# word-break character (bash keeps that part on the line).
_mh_serve_reply() {
  local IFS=$' \t\n'
  mapfile -t COMPREPLY < <(compgen -W "$1" -- "$2")
  local breaks=${COMP_WORDBREAKS//[^@:=]/}
  if [[ -n $breaks && $2 == *["$breaks"]* ]]; then
    local prefix=${2%"${2##*["$breaks"]}"}
    [[ -n $prefix ]] && COMPREPLY=("${COMPREPLY[@]#"$prefix"}")
  fi
}

# Directories for --spool DIR ($1 = what is typed of DIR, $2 = what precedes it in the
# word, "--spool=" or "").
_mh_serve_dirs() {
  compopt -o filenames 2>/dev/null
  local IFS=$'\n' dir
  local -a dirs
  mapfile -t dirs < <(compgen -d -- "$1")
  COMPREPLY=()
  for dir in "${dirs[@]}"; do COMPREPLY+=("$2$dir"); done
  if [[ -n $2 && $COMP_WORDBREAKS == *=* ]]; then
    COMPREPLY=("${COMPREPLY[@]#"$2"}")
  fi
}

_mh_serve() {
  local line=${COMP_LINE:0:COMP_POINT} cur='' prev=''
  local -a words
  read -ra words <<<"$line"
  if [[ -n $line && $line != *[[:space:]] ]]; then
    cur=${words[-1]}
    unset 'words[-1]'
  fi
  ((${#words[@]} > 0)) && prev=${words[-1]}
  COMPREPLY=()

  # Walk the words before the cursor: the spool, the command path (queue SUB), the
  # operands so far, whether a daemon option or --all was given, whether `--` ended the
  # options.
  local spool='' path='' sub='' daemon=0 all=0 options_done=0 i word
  local -a operands=()
  for ((i = 1; i < ${#words[@]}; i++)); do
    word=${words[i]}
    if ((!options_done)); then
      case $word in
      --) options_done=1; continue ;;
      --spool) spool=${words[i + 1]}; ((i += 1)); continue ;;
      --spool=*) spool=${word#--spool=}; continue ;;
      --wait) ((i += 1)); continue ;;
      --stdio | --client-ip | --threads | --delivery-threads | --shutdown-grace) daemon=1; ((i += 1)); continue ;;
      --check-config | --stdio=* | --client-ip=* | --threads=* | --delivery-threads=* | --shutdown-grace=*)
        daemon=1
        continue
        ;;
      --all) all=1; continue ;;
      -*) continue ;;
      esac
    fi
    if [[ -z $path ]]; then
      path=$word
    elif [[ $path == queue && -z $sub ]]; then
      sub=$word
    else
      operands+=("$word")
    fi
  done

  case $prev in
  --spool) _mh_serve_dirs "$cur" ''; return 0 ;;
  --stdio) _mh_serve_reply "$_mh_serve_services" "$cur"; return 0 ;;
  --shutdown-grace | --wait) _mh_serve_reply "$_mh_serve_durations" "$cur"; return 0 ;;
  --client-ip | --threads | --delivery-threads) return 0 ;; # an address, a number
  esac

  case $cur in
  --spool=*) _mh_serve_dirs "${cur#--spool=}" --spool= ;;
  --stdio=*)
    local services='' s
    for s in $_mh_serve_services; do services+=" --stdio=$s"; done
    _mh_serve_reply "$services" "$cur"
    ;;
  --shutdown-grace=* | --wait=*)
    local durations='' d
    for d in $_mh_serve_durations; do durations+=" ${cur%%=*}=$d"; done
    _mh_serve_reply "$durations" "$cur"
    ;;
  --client-ip=* | --threads=* | --delivery-threads=*) ;;
  -*)
    ((options_done)) && return 0
    case $path in
    '') _mh_serve_reply "$_mh_serve_opts" "$cur" ;;
    queue) _mh_serve_reply "$(_mh_serve_queue_opts "$sub") $_mh_serve_common_opts" "$cur" ;;
    esac
    ;;
  *)
    case $path in
    '')
      # No command yet: the daemon's options, or the queue commands (not both).
      if ((daemon)); then
        [[ -z $cur ]] && _mh_serve_reply "$_mh_serve_opts" "$cur"
      elif [[ -z $cur ]]; then
        _mh_serve_reply "queue $_mh_serve_opts" "$cur"
      else
        _mh_serve_reply queue "$cur"
      fi
      ;;
    queue)
      case $sub in
      '') _mh_serve_reply "$_mh_serve_queue_commands" "$cur" ;;
      show)
        ((${#operands[@]} == 0)) && _mh_serve_reply "$(_mh_serve_queue_ids "$(_mh_serve_unquote "$spool")")" "$cur"
        ;;
      retry | delete)
        # Each id once; none after --all.
        ((all)) && return 0
        local ids='' id given
        while IFS= read -r id; do
          for given in "${operands[@]}"; do [[ $id == "$given" ]] && continue 2; done
          ids+=" $id"
        done < <(_mh_serve_queue_ids "$(_mh_serve_unquote "$spool")")
        _mh_serve_reply "$ids" "$cur"
        ;;
      esac
      ;;
    esac
    ;;
  esac
  return 0
}

complete -F _mh_serve mh-serve
