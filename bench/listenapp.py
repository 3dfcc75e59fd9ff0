"""The app of the restart-under-load bench: answers every connection with a
short HTTP response. It serves fd 3 when LISTEN_FDS is set (resil-init
--listen) and otherwise binds 127.0.0.1:PORT itself (argv[1]), with
SO_REUSEADDR as every common server framework does."""
import os
import socket
import sys

if os.environ.get("LISTEN_FDS"):
    srv = socket.socket(fileno=3)
else:
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", int(sys.argv[1])))
    srv.listen(1024)
srv.setblocking(True)
body = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"
while True:
    conn, _ = srv.accept()
    with conn:
        try:
            conn.recv(4096)
            conn.sendall(body)
        except OSError:
            pass
