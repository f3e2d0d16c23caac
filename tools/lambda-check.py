#!/usr/bin/env python3
"""tools/lambda-check.py: check the Lambda .zip package (tools/lambda-zip.sh)
as Lambda's provided.al2023 runtime will use it: unzipped with the modes its
entries carry, /var/task/bootstrap started with Lambda's environment only.

    tools/lambda-check.py --zip FILE [--into DIR]
    tools/lambda-check.py --build DIR [--into DIR]   package the build DIR
                                                     first (lambda-zip.sh --build)

--into DIR keeps the unzipped package there (the lambda_zip_runtime ctest
runs the Lambda runtime test against DIR/bootstrap); otherwise a temporary
folder is used and removed.

What it checks, each failure named:
  1. the entries: regular files only (no links), bootstrap at the root,
     bootstrap, bin/rapidphoto and the loader executable (0755), every
     entry readable by others (Lambda runs the code as another user), none
     writable by others; unzipped, the files carry those modes;
  2. every ELF file: each NEEDED library is in lib/ (nothing is taken from
     the host), and each symbol version it needs (GLIBC_2.x, GLIBCXX_3.4.x,
     OPENSSL_3.0.0...) is defined by the bundled library it names;
  3. glibc: the GLIBC_ versions each file needs, against Amazon Linux
     2023's 2.34. Files needing newer ones are allowed only because glibc
     itself is bundled and used: the loader and libc are in lib/, and
  4. the unzipped bootstrap, started by `env -i` with Lambda's variables
     only (LD_LIBRARY_PATH set as Lambda sets it, to host folders), runs the
     binary, and the running process (`rapidphoto lambda` up to its first
     Runtime API request, its init error after a database connection
     attempt to "localhost", and `rapidphoto serve`) has mapped no shared
     object from outside the package: /proc/PID/exe is the bundled loader.
What it cannot prove here: no Amazon Linux 2023 host is available, so the
host is Debian 12; (3) and (4) show that the host's C library is not used,
which is what makes the host's version irrelevant.
"""
import argparse
import http.server
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile

AL2023_GLIBC = (2, 34)
HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
EXECUTABLE = {'bootstrap', 'bin/rapidphoto', 'lib/ld-linux-x86-64.so.2'}
# glibc's own libraries (the ones Debian's libc6 ships that the package can hold)
GLIBC_PARTS = {'ld-linux-x86-64.so.2', 'libc.so.6', 'libm.so.6', 'libpthread.so.0', 'libdl.so.2',
               'librt.so.1', 'libresolv.so.2', 'libutil.so.1', 'libanl.so.1', 'libmvec.so.1'}

failures = []


def fail(message):
    failures.append(message)
    print(f'FAIL: {message}', flush=True)


def say(message):
    print(message, flush=True)


def version_tuple(name):
    return tuple(int(x) for x in name.split('_', 1)[1].split('.'))


def readelf(args, path):
    return subprocess.run(['readelf', '-W', *args, path], check=True, capture_output=True,
                          text=True).stdout


def is_elf(path):
    with open(path, 'rb') as f:
        return f.read(4) == b'\x7fELF'


def needed(path):
    return re.findall(r'\(NEEDED\)\s+Shared library: \[([^\]]+)\]', readelf(['-d'], path))


def version_needs(path):
    """{library: {version names}} from .gnu.version_r"""
    needs = {}
    current = None
    section = readelf(['-V'], path).split("Version needs section '.gnu.version_r'")
    if len(section) < 2:
        return needs
    for line in section[1].splitlines():
        m = re.search(r'File: (\S+)\s+Cnt:', line)
        if m:
            current = needs.setdefault(m.group(1), set())
            continue
        m = re.search(r'Name: (\S+)\s+Flags:', line)
        if m and current is not None:
            current.add(m.group(1))
        if line.startswith("Version symbols section") or line.startswith("Version definition"):
            current = None
    return needs


def version_defs(path):
    """the version names .gnu.version_d defines"""
    section = readelf(['-V'], path).split("Version definition section '.gnu.version_d'")
    if len(section) < 2:
        return set()
    body = section[1].split("Version needs section")[0]
    return set(re.findall(r'Name: (\S+)', body))


def unzip(zip_path, into):
    """Extract as Lambda does: each file with the mode its entry carries."""
    with zipfile.ZipFile(zip_path) as z:
        names = z.namelist()
        for info in z.infolist():
            mode = info.external_attr >> 16
            name = info.filename
            if info.create_system != 3 or not stat.S_ISREG(mode):
                fail(f'{name}: not a regular file with a Unix mode in the zip '
                     f'(system {info.create_system}, mode {oct(mode)})')
                continue
            perm = stat.S_IMODE(mode)
            if name in EXECUTABLE and perm != 0o755:
                fail(f'{name}: mode {oct(perm)} in the zip, 0755 needed')
            if not perm & stat.S_IROTH:
                fail(f'{name}: mode {oct(perm)} is not readable by others (Lambda runs as another user)')
            if perm & stat.S_IWOTH:
                fail(f'{name}: mode {oct(perm)} is writable by others')
            if name.startswith('/') or '..' in name.split('/'):
                fail(f'{name}: a path outside the package')
                continue
            target = os.path.join(into, name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with z.open(info) as src, open(target, 'wb') as dst:
                shutil.copyfileobj(src, dst)
            os.chmod(target, perm)
    for name in ('bootstrap', 'bin/rapidphoto'):
        if name not in names:
            fail(f'{name} is not in the zip')
    for name in EXECUTABLE:
        path = os.path.join(into, name)
        if os.path.exists(path) and not os.access(path, os.X_OK):
            fail(f'{name}: not executable once unzipped')
    return names


def check_elves(root):
    lib = os.path.join(root, 'lib')
    elves = []
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if is_elf(path):
                elves.append(path)
    defs = {}
    glibc_rows = []
    for path in sorted(elves):
        rel = os.path.relpath(path, root)
        for library in needed(path):
            if not os.path.isfile(os.path.join(lib, library)):
                fail(f'{rel} needs {library}, which is not in lib/')
        glibc = []
        for library, versions in version_needs(path).items():
            bundled = os.path.join(lib, library)
            if not os.path.isfile(bundled):
                continue            # named above
            if library not in defs:
                defs[library] = version_defs(bundled)
            for version in sorted(versions):
                if version not in defs[library]:
                    fail(f'{rel} needs {version} from {library}; the bundled one does not define it')
                if version.startswith('GLIBC_2.'):
                    glibc.append(version)
        newest = max(glibc, key=version_tuple) if glibc else '-'
        newer = sorted({v for v in glibc if version_tuple(v) > AL2023_GLIBC}, key=version_tuple)
        glibc_rows.append((rel, newest, newer))
    return elves, glibc_rows


_GIVEN_PORTS = set()


def free_port():
    """A port on 127.0.0.1 that was free a moment ago: random below the
    kernel's ephemeral range (where bind to port 0 and outgoing connections
    take theirs), never the same twice in this process (port 0 asked twice
    in a row can hand the same port back)."""
    import random
    high = 32768
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
            if low > 11000:
                high = low
    except (OSError, ValueError, IndexError):
        pass
    for _ in range(10000):
        port = random.randrange(10000, high)
        if port in _GIVEN_PORTS:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN_PORTS.add(port)
        return port
    raise RuntimeError("free_port: no free port found below %d" % high)


def outside_mappings(pid, root):
    """The shared objects PID has mapped from outside root."""
    out = set()
    with open(f'/proc/{pid}/maps') as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) < 6:
                continue
            path = parts[5].strip()
            if not path.startswith('/') or path.startswith('/dev/') or path.startswith('/memfd:'):
                continue
            path = path.replace(' (deleted)', '')
            if not path.startswith(root + '/') and ('.so' in os.path.basename(path) or os.access(path, os.X_OK)):
                out.add(path)
    return out


def lambda_environment(root, api, data):
    """What Lambda gives a provided.al2023 function, host folders in LD_LIBRARY_PATH included"""
    return {
        'AWS_LAMBDA_RUNTIME_API': api,
        'LAMBDA_TASK_ROOT': root,
        'LAMBDA_RUNTIME_DIR': root,
        '_HANDLER': 'rapidphoto',
        'AWS_LAMBDA_FUNCTION_NAME': 'rapid-photo-check-image-processor',
        'AWS_LAMBDA_FUNCTION_MEMORY_SIZE': '1024',
        'AWS_LAMBDA_FUNCTION_VERSION': '$LATEST',
        'AWS_REGION': 'us-east-1',
        'AWS_DEFAULT_REGION': 'us-east-1',
        'AWS_ACCESS_KEY_ID': 'check', 'AWS_SECRET_ACCESS_KEY': 'check',
        'LANG': 'en_US.UTF-8', 'TZ': ':UTC',
        'PATH': '/usr/local/bin:/usr/bin/:/bin:/opt/bin',
        'LD_LIBRARY_PATH': '/lib64:/usr/lib64:/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu:'
                           f'{root}:{root}/lib:/opt/lib',
        'RAPIDPHOTO_DATA_DIR': data,
    }


def run_version(root, data):
    env = lambda_environment(root, '127.0.0.1:9', data)
    args = ['env', '-i'] + [f'{k}={v}' for k, v in env.items()] + [os.path.join(root, 'bootstrap'), '--version']
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if r.returncode != 0 or not r.stdout.startswith('rapidphoto '):
        fail(f'bootstrap --version from a clean environment: exit {r.returncode}: {r.stdout}{r.stderr}')
    else:
        say(f'bootstrap --version (env -i): {r.stdout.strip()}')
    r = subprocess.run(['env', '-i', f'LAMBDA_TASK_ROOT={root}', os.path.join(root, 'bootstrap'), '--help'],
                       capture_output=True, text=True, timeout=60)
    return r.stdout + r.stderr


def check_process(root, pid, what):
    exe = os.readlink(f'/proc/{pid}/exe')
    if exe != os.path.join(root, 'lib', 'ld-linux-x86-64.so.2'):
        fail(f'{what}: /proc/PID/exe is {exe}, not the bundled loader')
    outside = outside_mappings(pid, root)
    if outside:
        fail(f'{what}: shared objects mapped from outside the package: {sorted(outside)}')
    else:
        with open(f'/proc/{pid}/maps') as f:
            inside = {line.split(None, 5)[5].strip() for line in f
                      if len(line.split(None, 5)) == 6 and line.split(None, 5)[5].startswith(root)}
        say(f'{what}: running from the bundled loader, {len(inside)} files mapped, all inside the package')


def run_lambda(root, data):
    """`bootstrap` (no arguments: `rapidphoto lambda`) until its first
    Runtime API request (next invocation, or the init error): by then it
    has initialised; its mappings are read while the request is held."""
    seen = threading.Event()
    result = {}

    class Api(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def handle_one(self):
            length = int(self.headers.get('Content-Length') or 0)
            body = self.rfile.read(length).decode('utf-8', 'replace') if length else ''
            result.setdefault('request', f'{self.command} {self.path} {body[:300]}'.strip())
            seen.set()
            time.sleep(10)              # held while the mappings are read

        do_GET = do_POST = handle_one

    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Api)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = lambda_environment(root, f'127.0.0.1:{server.server_address[1]}', data)
    #  A configuration that gets through to the database: "localhost" is
    #  looked up by the bundled glibc (/etc/hosts), nothing listens on
    #  port 1, so the init ends in Runtime.DatabaseError at /runtime/init/error
    env.update({'RAPIDPHOTO_STORAGE_BACKEND': 's3', 'RAPIDPHOTO_STORAGE_S3_BUCKET': 'photos',
                'AWS_ENDPOINT_URL': 'http://127.0.0.1:9',
                'RAPIDPHOTO_DB_URL': 'postgresql://rapidphoto:x@localhost:1/rapidphoto?connect_timeout=5'})
    args = ['env', '-i'] + [f'{k}={v}' for k, v in env.items()] + [os.path.join(root, 'bootstrap')]
    log = open(os.path.join(data, 'lambda.log'), 'w+')
    child = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while not seen.is_set() and time.time() < deadline and child.poll() is None:
            seen.wait(0.1)
        if not seen.is_set():
            log.seek(0)
            fail(f'rapidphoto lambda made no Runtime API request (exit {child.poll()}): {log.read()[-2000:]}')
            return
        say(f'rapidphoto lambda: first Runtime API request {result["request"]}')
        check_process(root, child.pid, 'rapidphoto lambda')
    finally:
        child.kill()
        child.wait()
        server.shutdown()


def run_serve(root, data):
    port = free_port()
    env = lambda_environment(root, '127.0.0.1:9', data)
    env.update({'RAPIDPHOTO_HTTP_LISTEN': f'127.0.0.1:{port}',
                'RAPIDPHOTO_BROKER_FRONTEND': f'tcp://127.0.0.1:{free_port()}',
                'RAPIDPHOTO_BROKER_BACKEND': f'tcp://127.0.0.1:{free_port()}'})
    args = ['env', '-i'] + [f'{k}={v}' for k, v in env.items()] + [os.path.join(root, 'bootstrap'), 'serve']
    log = open(os.path.join(data, 'serve.log'), 'w+')
    child = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        ready = False
        while time.time() < deadline and child.poll() is None and not ready:
            try:
                with urllib.request.urlopen(f'http://127.0.0.1:{port}/readyz', timeout=2) as r:
                    ready = r.status == 200
            except OSError:
                time.sleep(0.2)
        if not ready:
            log.seek(0)
            fail(f'rapidphoto serve never answered /readyz (exit {child.poll()}): {log.read()[-2000:]}')
            return
        say('rapidphoto serve (SQLite, data folder in /tmp): ready')
        check_process(root, child.pid, 'rapidphoto serve')
    finally:
        child.terminate()
        try:
            child.wait(20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main():
    parser = argparse.ArgumentParser(description='Check the Lambda .zip package')
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--zip', help='the lambda.zip to check')
    source.add_argument('--build', help='a configured build folder to package first')
    parser.add_argument('--into', help='unzip here and keep it (emptied first)')
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix='rp-lambda-check.')
    try:
        zip_path = args.zip
        if args.build:
            zip_path = os.path.join(work, 'lambda.zip')
            subprocess.run([os.path.join(HERE, 'lambda-zip.sh'), '--build', args.build, '--out', zip_path],
                           check=True, stdout=subprocess.DEVNULL)
        root = os.path.abspath(args.into) if args.into else os.path.join(work, 'task')
        if os.path.exists(root):
            shutil.rmtree(root)
        os.makedirs(root)
        size = os.path.getsize(zip_path)
        names = unzip(zip_path, root)
        unpacked = sum(os.path.getsize(os.path.join(root, n)) for n in names if os.path.isfile(os.path.join(root, n)))
        say(f'{zip_path}: {size / 1e6:.1f} MB, {len(names)} files, {unpacked / 1e6:.1f} MB unzipped')
        if size > 50 * 1024 * 1024:
            say('note: above 50 MB: upload it through S3 (update-function-code --s3-bucket), not directly')
        if unpacked > 250 * 1024 * 1024:
            fail(f'{unpacked} bytes unzipped: above Lambda\'s 250 MB')

        elves, rows = check_elves(root)
        say(f'{len(elves)} ELF files; the newest GLIBC_ version each needs (Amazon Linux 2023: 2.34):')
        width = max(len(r[0]) for r in rows)
        for rel, newest, newer in rows:
            mark = f'   needs {", ".join(newer)} > 2.34' if newer else ''
            say(f'  {rel:<{width}}  {newest}{mark}')
        beyond = [r for r in rows if r[2]]
        lib = os.path.join(root, 'lib')
        bundled_glibc = sorted(p for p in GLIBC_PARTS if os.path.isfile(os.path.join(lib, p)))
        libc_defs = version_defs(os.path.join(lib, 'libc.so.6')) if 'libc.so.6' in bundled_glibc else set()
        if libc_defs:
            newest_libc = max((v for v in libc_defs if v.startswith('GLIBC_2.')), key=version_tuple)
            say(f'glibc bundled: {", ".join(bundled_glibc)} (libc defines up to {newest_libc})')
        if beyond:
            if 'ld-linux-x86-64.so.2' not in bundled_glibc or 'libc.so.6' not in bundled_glibc:
                fail(f'{len(beyond)} files need glibc newer than 2.34 and glibc is not bundled: '
                     f'{[r[0] for r in beyond]}')
            else:
                say(f'{len(beyond)} files need glibc newer than 2.34: glibc is bundled, '
                    'and must be the one used (checked below)')
        with open(os.path.join(root, 'bootstrap')) as f:
            text = f.read()
        if not text.startswith('#!/bin/sh'):
            fail('bootstrap does not start with #!/bin/sh')

        data = os.path.join(work, 'tmp-rapidphoto')
        os.makedirs(data)
        helptext = run_version(root, data)
        if re.search(r'^\s+lambda\b', helptext, re.M):
            run_lambda(root, data)
        else:
            say('SKIPPED: this build has no `rapidphoto lambda` command: its process was not checked')
        run_serve(root, data)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    if failures:
        say(f'{len(failures)} failures')
        return 1
    say('lambda.zip: all checks passed')
    return 0


if __name__ == '__main__':
    sys.exit(main())
