# Loopback port helpers for the load scripts (sourced, not run).

# port_open PORT: true when something accepts on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ports_free PORT...: exits 1 when one is taken. A stale server from an earlier run would answer
# instead of ours (its replay cache turning the run into cheap rejections).
ports_free() {
  local port
  for port in "$@"; do
    if port_open "$port"; then
      echo "port $port is already in use: stop the process holding it first"; exit 1
    fi
  done
}

# wait_ports LOG PORT...: waits up to 10 s for every PORT to accept; otherwise prints LOG, exits 1.
wait_ports() {
  local log=$1 port ready
  shift
  for _ in $(seq 1 200); do
    ready=1
    for port in "$@"; do port_open "$port" || { ready=0; break; }; done
    [ "$ready" = 1 ] && return
    sleep 0.05
  done
  echo "server did not start"; cat "$log"; exit 1
}
