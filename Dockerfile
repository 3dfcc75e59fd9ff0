# resil-init: a tiny PID 1 for containers, as one static musl binary.
#
# Build the image (its only file is /resil-init), for this machine's platform,
# another one, or both:
#
#   docker build -t resil-init .
#   docker buildx build --platform linux/arm64 --load -t resil-init:arm64 .
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/resil-init --push .
#
# The legacy builder (DOCKER_BUILDKIT=0, no buildx) sets no TARGETARCH, so name
# it beside --platform (see the build stages below):
#
#   DOCKER_BUILDKIT=0 docker build --platform linux/arm64 --build-arg TARGETARCH=arm64 -t resil-init:arm64 .
#
# Then copy the binary into your own image and make it the entrypoint
# (`--from=` takes the image name; use a pinned tag or digest in production):
#
#   FROM your-base-image
#   COPY --from=resil-init /resil-init /resil-init
#   ENTRYPOINT ["/resil-init", "--"]
#   CMD ["your-app", "--its-flags"]
#
# The binary needs nothing from the image it lands in (no libc, no /etc files),
# so it works in scratch, distroless, alpine and glibc images alike.

# --- build: the same script that `make static` and CI run -------------------
# For another platform these stages still run on the builder's own platform and
# cross-compile for TARGETARCH, as `make static ARCH=arm64` does: no emulation.
# BuildKit (buildx, DOCKER_BUILDKIT=1) sets BUILDPLATFORM and TARGETARCH from
# --platform. The legacy builder sets neither: it needs --build-arg
# TARGETARCH=arm64 beside --platform linux/arm64 (without it the binary is
# amd64, whatever the image says), and without --platform it builds amd64.
#
# Why each COPY comes right after a FROM, and the binary is taken from a stage
# that only names the build: when building for arm64 the legacy builder (20.10)
# checks each image a COPY lands on or copies from against --platform, unless
# a FROM brought it in, so a COPY onto the result of a RUN, ARG or WORKDIR in
# these amd64 stages fails ("does not match the specified platform").
FROM --platform=${BUILDPLATFORM:-linux/amd64} debian:bookworm-slim AS deps
# libcurl and cJSON from Debian's source packages, in their own cached layer
# (one per TARGETARCH): it is rebuilt only when the build scripts change.
COPY scripts/build-static.sh scripts/deps.sh /src/scripts/
WORKDIR /src
ARG TARGETARCH
RUN sh scripts/build-static.sh --deps-only --arch "$TARGETARCH"

# resil-init itself (build/ is in .dockerignore, so build/deps above is kept);
# the script checks the result is static and for TARGETARCH, and runs
# --version when it can.
FROM --platform=${BUILDPLATFORM:-linux/amd64} deps AS build
COPY . /src/
ARG TARGETARCH
RUN sh scripts/build-static.sh --arch "$TARGETARCH" --output build/resil-init-static

FROM --platform=${BUILDPLATFORM:-linux/amd64} build AS binary

# --- the image: nothing but the binary ---------------------------------------
FROM scratch
COPY --from=binary /src/build/resil-init-static /resil-init
ENTRYPOINT ["/resil-init", "--"]
