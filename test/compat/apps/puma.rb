# puma under herd: take the socket herd passes (LISTEN_FDS), bind nothing.
bind_to_activated_sockets "only"
# Cluster mode: puma's own master with one worker process.
workers 1
