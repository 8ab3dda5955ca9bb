# Sourced by the bench scripts. raise_socket_buffer_caps BYTES WHO raises
# net.core.rmem_max and wmem_max to BYTES when they are lower and we are
# root, appending "key=old" to the caller's restore array (its EXIT trap
# writes them back); WHO names what the caps limit, for the message.
raise_socket_buffer_caps() {
  local want=$1 who=$2 k cur
  if [ "$(id -u)" != 0 ]; then
    echo "not root: net.core.rmem_max=$(sysctl -n net.core.rmem_max) left as it is ($who capped there)"
    return
  fi
  for k in net.core.rmem_max net.core.wmem_max; do
    cur=$(sysctl -n "$k")
    if [ "$cur" -lt "$want" ]; then
      restore+=("$k=$cur")
      sysctl -qw "$k=$want"
      echo "running as root: raised $k from $cur to $want for this run (restored on exit)"
    fi
  done
}

# restore_socket_buffer_caps writes back what raise_socket_buffer_caps changed.
restore_socket_buffer_caps() {
  local r
  for r in "${restore[@]}"; do sysctl -qw "$r" >/dev/null 2>&1 || true; done
}
