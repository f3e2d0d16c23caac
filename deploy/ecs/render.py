#!/usr/bin/env python3
"""deploy/ecs/render.py: fill the ECS templates' ${NAME} placeholders.

The templates (task-definitions/*.json, services/*.json) are the JSON that
`aws ecs register-task-definition --cli-input-json` and `aws ecs
create-service --cli-input-json` take, with ${NAME} where a value belongs to
one environment or account. Terraform's templatefile() reads the same
syntax; by hand this script does it, with the values of an env file
(NAME=VALUE lines, # comments; example.env) and --set NAME=VALUE on top.

    python3 deploy/ecs/render.py --vars deploy/ecs/example.env --out /tmp/ecs
    python3 deploy/ecs/render.py --vars prod.env --set IMAGE_TAG=v1.0.1 \\
        deploy/ecs/task-definitions/api.json > api.json

A placeholder with no value, a value that would break the JSON, or a
result that is not JSON stops it (exit 1, one line naming the file and the
name); nothing is written then. Exit 2 on wrong usage. Standard library
only: Debian's python3 runs it.
"""
import argparse
import json
import os
import re
import string
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
GROUPS = ("task-definitions", "services")
NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


def read_vars(path):
    values = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, eq, value = line.partition("=")
            if not eq or not NAME.match(name):
                raise ValueError("%s:%d: not NAME=VALUE: %s" % (path, number, line))
            values[name] = value
    return values


def templates():
    found = []
    for group in GROUPS:
        folder = os.path.join(HERE, group)
        for name in sorted(os.listdir(folder)):
            if name.endswith(".json"):
                found.append(os.path.join(folder, name))
    return found


def render(path, values):
    """The rendered template, parsed; ValueError naming what is wrong."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for name, value in values.items():
        #  A value goes inside a JSON string as it is: no escapes needed
        if any(c in value for c in '"\\') or any(ord(c) < 0x20 for c in value):
            raise ValueError("%s: the value of %s holds a quote, backslash or control character" % (path, name))
    try:
        text = string.Template(text).substitute(values)
    except KeyError as e:
        raise ValueError("%s: no value for ${%s} (set it in the env file or with --set)" % (path, e.args[0]))
    except ValueError as e:
        raise ValueError("%s: %s" % (path, e))
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError("%s: not JSON once rendered: %s" % (path, e))


def main(argv):
    parser = argparse.ArgumentParser(description="Fill the ECS templates' ${NAME} placeholders.")
    parser.add_argument("--vars", help="an env file of NAME=VALUE lines (e.g. deploy/ecs/example.env)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a value (wins)")
    parser.add_argument("--out", help="write every template rendered under this folder")
    parser.add_argument("template", nargs="*", help="templates (default: all); one, without --out, to stdout")
    args = parser.parse_args(argv)
    values = {}
    try:
        if args.vars:
            values.update(read_vars(args.vars))
        for item in args.set:
            name, eq, value = item.partition("=")
            if not eq or not NAME.match(name):
                parser.error("--set takes NAME=VALUE, not %r" % item)
            values[name] = value
        paths = args.template or templates()
        if not args.out and len(paths) != 1:
            parser.error("name one template to print, or --out DIR for several")
        rendered = [(path, render(path, values)) for path in paths]
    except (OSError, ValueError) as e:
        print("render.py: %s" % e, file=sys.stderr)
        return 1
    if not args.out:
        json.dump(rendered[0][1], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for path, document in rendered:
        group = os.path.basename(os.path.dirname(path))
        os.makedirs(os.path.join(args.out, group), exist_ok=True)
        target = os.path.join(args.out, group, os.path.basename(path))
        with open(target, "w", encoding="utf-8") as f:
            json.dump(document, f, indent=2)
            f.write("\n")
        print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
