#!/usr/bin/env python3
"""tests/lambda/check_bites.py: tools/lambda-check.py catches spoiled packages.

    check_bites.py UNZIPPED_DIR      (the package lambda_zip unzipped: build/lambda-zip)

Each spoiled copy of the good package is zipped (stored, modes kept) and
checked; the check must fail, naming the fault:
  1. a bootstrap that starts bin/rapidphoto with the host's loader and
     LD_LIBRARY_PATH=lib (the usual way to ship a binary with its libraries):
     the process's loader and mappings come from the host;
  2. a library missing from lib/, another one 0600, a link among the entries.
The good package is checked by ctest lambda_zip itself.
"""
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
CHECK = os.path.join(HERE, '..', '..', 'tools', 'lambda-check.py')


def zip_tree(root, out, links=()):
    with zipfile.ZipFile(out, 'w', zipfile.ZIP_STORED) as z:
        for folder, _, files in os.walk(root):
            for name in sorted(files):
                path = os.path.join(folder, name)
                info = zipfile.ZipInfo(os.path.relpath(path, root))
                info.create_system = 3
                info.external_attr = (stat.S_IFREG | stat.S_IMODE(os.stat(path).st_mode)) << 16
                with open(path, 'rb') as f:
                    z.writestr(info, f.read())
        for name, target in links:
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, target)


def check(zip_path, expected):
    r = subprocess.run([sys.executable, CHECK, '--zip', zip_path], capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    missing = [e for e in expected if e not in out]
    if r.returncode == 0 or missing:
        print(out)
        print(f'FAIL: {os.path.basename(zip_path)}: exit {r.returncode}, not found in the output: {missing}')
        return False
    print(f'ok: {os.path.basename(zip_path)} refused: ' +
          '; '.join(line for line in out.splitlines() if line.startswith('FAIL')))
    return True


def main():
    good = os.path.abspath(sys.argv[1])
    if not os.path.isfile(os.path.join(good, 'bootstrap')):
        print(f'{good}/bootstrap is missing: run ctest lambda_zip first')
        return 1
    work = tempfile.mkdtemp(prefix='rp-lambda-bites.')
    ok = True
    try:
        # 1. The host's loader
        tree = os.path.join(work, 'host-loader')
        shutil.copytree(good, tree)
        with open(os.path.join(tree, 'bootstrap'), 'w') as f:
            f.write('#!/bin/sh\nhere=${0%/*}\n[ $# -gt 0 ] || set -- lambda\n'
                    'LD_LIBRARY_PATH=$here/lib exec "$here/bin/rapidphoto" "$@"\n')
        os.chmod(os.path.join(tree, 'bootstrap'), 0o755)
        zip_tree(tree, os.path.join(work, 'host-loader.zip'))
        shutil.rmtree(tree)
        ok &= check(os.path.join(work, 'host-loader.zip'),
                    ['not the bundled loader', 'mapped from outside the package: ['])
        # 2. A library missing, one unreadable by others, a link
        tree = os.path.join(work, 'broken')
        shutil.copytree(good, tree)
        os.remove(os.path.join(tree, 'lib', 'libinih.so.1'))
        os.chmod(os.path.join(tree, 'lib', 'libz.so.1'), 0o600)
        zip_tree(tree, os.path.join(work, 'broken.zip'), links=[('lib/libjansson.so', 'libjansson.so.4')])
        shutil.rmtree(tree)
        ok &= check(os.path.join(work, 'broken.zip'),
                    ['bin/rapidphoto needs libinih.so.1, which is not in lib/',
                     'lib/libz.so.1: mode 0o600 is not readable by others',
                     'lib/libjansson.so: not a regular file'])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
