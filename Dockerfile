# Dockerfile: the engine's container image, rapid-photo/backend.
#
#   docker build -t rapid-photo/backend:0.2.0 .      (or podman build --format docker)
#   docker run -d -p 8080:8080 -v photos:/data rapid-photo/backend:0.2.0
#   docker exec CONTAINER rapidphoto user add alice --password-stdin <<<'correct horse battery'
#
# Two stages. The build stage compiles `rapidphoto` on Debian 12 against the
# pinned libvips 8.18 from npm (tools/vips.sh: one shared library with its
# own dependencies inside) and Debian's libheif, and installs the binary
# and that library into /opt/rapidphoto (bin/, lib/, found through a
# relative RUNPATH). The runtime stage is debian:bookworm-slim with the
# run-time packages of every library the binary links (readelf -d: NEEDED),
# libheif1's HEVC and AV1 decoders, and ca-certificates for S3 and SQS over
# TLS; nothing else: no compiler, no npm, no shell tools beyond the base.
#
# Layers run from what changes least to what changes most, so a code
# change re-runs only the compile and the final COPY: the packages and the
# npm downloads (keyed by tools/vips.sh and web/package-lock.json) stay in
# the cache. .dockerignore sends only what the build reads.
#
# Settings come from RAPIDPHOTO_<SECTION>_<KEY> variables (README,
# Configuration); the image sets the HTTP address, the data folder (the
# volume /data) and logs on stdout. The process runs as the user
# rapidphoto (uid 10001), never root.
#
# The same image is a Lambda function (README, "Lambda packages"): with the
# function's image_config command ["lambda"], Lambda runs `rapidphoto
# lambda` as a user of its own on a read-only file system, /tmp writable;
# the function's environment sets RAPIDPHOTO_DATA_DIR=/tmp/rapidphoto.
# tests/container/lambda-podman.sh runs it that way for ctest container_lambda.

# ---- build --------------------------------------------------------------------
FROM debian:bookworm AS build
ARG DEBIAN_FRONTEND=noninteractive
# The compiler and the -dev packages of tools/bootstrap.sh (without
# libvips-dev: the bundled libvips is linked); nodejs and npm fetch the
# pinned libvips and the web app's tus-js-client bundle.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config ca-certificates nodejs npm \
        libczmq-dev libzmq3-dev libmsgpack-dev libheif-dev libexif-dev libraw-dev \
        libjansson-dev libinih-dev libssl-dev libcurl4-openssl-dev libpq-dev \
        libsqlite3-dev libmicrohttpd-dev libjwt-dev libxml2-dev \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The npm packages, each keyed by the files that pin it
COPY tools/vips.sh tools/
RUN tools/vips.sh
COPY tools/web.sh tools/
COPY web/package.json web/package-lock.json web/
RUN tools/web.sh
# The sources; the compile re-runs when any of them changes
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DRP_TESTS=OFF >/dev/null \
 && cmake --build /build -j"$(nproc)" --target rapidphoto \
 && cmake --install /build --prefix /opt/rapidphoto --strip \
 && /opt/rapidphoto/bin/rapidphoto --version

# ---- runtime ------------------------------------------------------------------
FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
# What `readelf -d bin/rapidphoto lib/libvips-cpp.so.*` NEEDs: libheif1
# (with libde265 for HEVC, libdav1d and libaom for AV1), libexif12, libraw20
# (camera RAW; brings liblcms2-2, libgomp1, libjpeg62-turbo), libczmq4,
# libzmq5, libmsgpackc2, libjansson4, libinih1, libssl3, libsqlite3-0, libpq5,
# libcurl4, libxml2, libmicrohttpd12, libjwt0, libstdc++6 (the bundled
# libvips is C++ inside)
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        ca-certificates libstdc++6 \
        libheif1 libde265-0 libdav1d6 libaom3 libexif12 libraw20 \
        libczmq4 libzmq5 libmsgpackc2 libjansson4 libinih1 libssl3 \
        libsqlite3-0 libpq5 libcurl4 libxml2 libmicrohttpd12 libjwt0 \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log
# A user of its own, and its data folder (the volume: SQLite, the stored
# photos, or in S3 mode the local cache)
RUN groupadd --system --gid 10001 rapidphoto \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin rapidphoto \
 && mkdir /data && chown 10001:10001 /data
COPY --from=build /opt/rapidphoto /opt/rapidphoto
ENV PATH=/opt/rapidphoto/bin:$PATH \
    RAPIDPHOTO_HTTP_LISTEN=0.0.0.0:8080 \
    RAPIDPHOTO_DATA_DIR=/data \
    RAPIDPHOTO_LOG_OUTPUT=stdout \
    RAPIDPHOTO_METRICS_EMF=on
VOLUME /data
WORKDIR /data
EXPOSE 8080
USER 10001:10001
# GET /healthz on http.listen's port, by the binary itself (no curl in the image)
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
    CMD ["rapidphoto", "health"]
ENTRYPOINT ["rapidphoto"]
CMD ["serve"]
