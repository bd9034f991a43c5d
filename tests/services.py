"""Real Redis and nginx processes for the suites of several processes: started on free
ports, stopped by their process id."""

import shutil
import socket
import subprocess
import time
from pathlib import Path

from demo_server import free_port


def _wait_port(port, process, name, timeout_s=10):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("%s exited: %s" % (name, process.stderr.read().decode(errors="replace")))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("%s did not listen on port %d" % (name, port))


class RedisServer:
    """``redis-server`` without persistence on a fixed port: it can be stopped and started
    again (empty, like a Redis that was restarted without persistence... or kept, by
    SIGSTOP/SIGCONT)."""

    def __init__(self, port=None):
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise RuntimeError("redis-server is not installed (`./dev test` installs it)")
        self.port = port or free_port()
        self.url = "redis://127.0.0.1:%d/0" % self.port
        self.process = None

    def start(self):
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _wait_port(self.port, self.process, "redis-server")
        return self

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


NGINX_CONF = """\
worker_processes 1;
worker_rlimit_nofile 8192;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
{config}
}}
"""

# The configuration the README documents: round-robin over the backends, no stickiness.
SITE_CONF = """\
    upstream djreconnect {{
{balance}{servers}
    }}
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://djreconnect;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;
            proxy_buffering off;
            proxy_cache off;
            proxy_read_timeout 120s;
            proxy_send_timeout 120s;
            proxy_next_upstream error timeout http_502 http_503;
            proxy_connect_timeout 2s;
        }}
    }}
"""


class Nginx:
    """nginx in front of ``backend_ports``, with the documented config: round-robin, or
    ``sticky`` (ip_hash: one client, one backend; nothing needs it with a Redis store)."""

    def __init__(self, backend_ports, directory, port=None, sticky=False):
        self.binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
        if self.binary is None:
            raise RuntimeError("nginx is not installed (`./dev test` installs it)")
        self.port = port or free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.directory = Path(directory)
        self.backend_ports = list(backend_ports)
        self.sticky = sticky  # ip_hash: one client, one backend (SSE streams and their POSTs)
        self.process = None

    def config(self):
        servers = "\n".join("        server 127.0.0.1:%d max_fails=0;" % port for port in self.backend_ports)
        balance = "        ip_hash;\n" if self.sticky else ""
        site = SITE_CONF.format(servers=servers, port=self.port, balance=balance)
        return NGINX_CONF.format(dir=self.directory, config=site)

    def start(self):
        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.directory / "nginx.conf"
        conf.write_text(self.config())
        command = [self.binary, "-c", str(conf), "-p", str(self.directory), "-g", "daemon off;"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _wait_port(self.port, self.process, "nginx")
        return self

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
