# mh-serve.bash — bash completion for mh-serve(8): its options, directories after
# --spool, the services after --stdio (smtp, pop3), usual durations after
# --shutdown-grace and --wait, and the `queue` commands (list, show, retry, delete) with
# their options and queue ids. The ids come from the spool named by --spool on the line
# (else $MH_SPOOL) by asking mh-serve itself (`queue list --ids`), so the completion never
# reads queue files on its own. The values of --client-ip, --threads,
# --delivery-threads, --hostname and --listen are left to the user.
# Words come from COMP_LINE, not COMP_WORDS, as in mh-quota.bash: ':' and '=' are in
# COMP_WORDBREAKS, so bash would cut "--stdio=pop3" or an IPv6 address apart; a reply
# is trimmed to what bash replaces (after the last break).

# The helpers shared by the mh-* completions sit next to this file (mailhost-common.bash
# says how); without them this file defines nothing.
source "$(dirname -- "${BASH_SOURCE[0]}")/mailhost-common.bash" || return 1

_mh_serve_opts='--spool --check-config --stdio --client-ip --threads --delivery-threads
  --shutdown-grace --hostname --listen --json --quiet -q --help -h --version'
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

_mh_serve() {
  local cur prev
  local -a words
  _mailhost_blank_words
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
      --stdio | --client-ip | --threads | --delivery-threads | --shutdown-grace | --hostname | --listen)
        daemon=1
        ((i += 1))
        continue
        ;;
      --check-config | --stdio=* | --client-ip=* | --threads=* | --delivery-threads=* | --shutdown-grace=* | \
        --hostname=* | --listen=*)
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
  --spool) _mailhost_reply_directories "$cur" "$cur"; return 0 ;;
  --stdio) _mailhost_reply "$_mh_serve_services" "$cur"; return 0 ;;
  --shutdown-grace | --wait) _mailhost_reply "$_mh_serve_durations" "$cur"; return 0 ;;
  --client-ip | --threads | --delivery-threads | --hostname | --listen) return 0 ;; # an address, a number, a name
  esac

  case $cur in
  --spool=*) _mailhost_reply_directories "$cur" "${cur#--spool=}" ;;
  --stdio=*)
    local services='' s
    for s in $_mh_serve_services; do services+=" --stdio=$s"; done
    _mailhost_reply "$services" "$cur"
    ;;
  --shutdown-grace=* | --wait=*)
    local durations='' d
    for d in $_mh_serve_durations; do durations+=" ${cur%%=*}=$d"; done
    _mailhost_reply "$durations" "$cur"
    ;;
  --client-ip=* | --threads=* | --delivery-threads=* | --hostname=* | --listen=*) ;;
  -*)
    ((options_done)) && return 0
    case $path in
    '') _mailhost_reply "$_mh_serve_opts" "$cur" ;;
    queue) _mailhost_reply "$(_mh_serve_queue_opts "$sub") $_mh_serve_common_opts" "$cur" ;;
    esac
    ;;
  *)
    case $path in
    '')
      # No command yet: the daemon's options, or the queue commands (not both).
      if ((daemon)); then
        [[ -z $cur ]] && _mailhost_reply "$_mh_serve_opts" "$cur"
      elif [[ -z $cur ]]; then
        _mailhost_reply "queue $_mh_serve_opts" "$cur"
      else
        _mailhost_reply queue "$cur"
      fi
      ;;
    queue)
      case $sub in
      '') _mailhost_reply "$_mh_serve_queue_commands" "$cur" ;;
      show)
        ((${#operands[@]} == 0)) && _mailhost_reply "$(_mailhost_ask "$(_mailhost_unquote "$spool")" mh-serve queue list --ids)" "$cur"
        ;;
      retry | delete)
        # Each id once; none after --all.
        ((all)) && return 0
        local ids='' id given
        while IFS= read -r id; do
          for given in "${operands[@]}"; do [[ $id == "$given" ]] && continue 2; done
          ids+=" $id"
        done < <(_mailhost_ask "$(_mailhost_unquote "$spool")" mh-serve queue list --ids)
        _mailhost_reply "$ids" "$cur"
        ;;
      esac
      ;;
    esac
    ;;
  esac
  return 0
}

complete -F _mh_serve mh-serve
