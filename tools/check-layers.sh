#!/usr/bin/env bash
# tools/check-layers.sh: fail when an include runs against the layers.
#
# The layers, bottom to top, and what each may include (README, Architecture):
#   engine/    engine/
#   library/   engine/ library/
#   actors/    engine/ library/ actors/
#   gateway/   engine/ library/ gateway/
#   app/       everything above
# Every include of ours names its folder from the source root
# ("engine/log.h", never "log.h"). The heavy third-party libraries belong
# to one layer each: libvips, libexif and libheif to actors/ (and main,
# which starts libvips once), libmicrohttpd and libjwt to gateway/.
# tests/ and bench/ may include anything. Prints each offence as
# FILE:LINE and what is wrong, then a summary; exit 1 if any.
set -euo pipefail
cd "$(dirname "$0")/.."

allowed() {     # layer -> the folders it may include
    case "$1" in
        engine)  echo "engine" ;;
        library) echo "engine library" ;;
        actors)  echo "engine library actors" ;;
        gateway) echo "engine library gateway" ;;
        app)     echo "engine library actors gateway app" ;;
    esac
}
system_owner() {    # a system header -> the layers that may use it
    case "$1" in
        vips/*|libexif/*|libheif/*) echo "actors app" ;;
        microhttpd.h|jwt.h)         echo "gateway app" ;;
        *)                          echo "" ;;
    esac
}

offences=0 files=0 includes=0
while IFS= read -r file; do
    layer=${file%%/*}
    ok=$(allowed "$layer")
    files=$((files + 1))
    while IFS=: read -r line text; do
        includes=$((includes + 1))
        if [[ $text =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\"([^\"]+)\" ]]; then
            target=${BASH_REMATCH[1]}
            folder=${target%%/*}
            if [ "$folder" = "$target" ]; then
                echo "$file:$line: includes \"$target\" without its folder (write \"<layer>/.../$target\")"
                offences=$((offences + 1))
            elif [[ " $ok " != *" $folder "* ]]; then
                echo "$file:$line: includes $target: $layer/ may include only ${ok// /\/, }/"
                offences=$((offences + 1))
            fi
        elif [[ $text =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\<([^\>]+)\> ]]; then
            target=${BASH_REMATCH[1]}
            owners=$(system_owner "$target")
            if [ -n "$owners" ] && [[ " $owners " != *" $layer "* ]]; then
                echo "$file:$line: includes <$target>, which belongs to ${owners// /\/, }/ alone"
                offences=$((offences + 1))
            fi
        fi
    done < <(grep -n '^[[:space:]]*#[[:space:]]*include' "$file" || true)
done < <(git ls-files 'engine/*.[ch]' 'library/*.[ch]' 'actors/*.[ch]' 'gateway/*.[ch]' 'app/*.[ch]'; \
         git ls-files --others --exclude-standard 'engine/*.[ch]' 'library/*.[ch]' 'actors/*.[ch]' \
                      'gateway/*.[ch]' 'app/*.[ch]')

if [ "$offences" -gt 0 ]; then
    echo "check-layers: $offences includes run against the layers ($files files, $includes includes)" >&2
    exit 1
fi
echo "check-layers: $files files, $includes includes, every one runs downward"
