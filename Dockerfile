# resil-init: a tiny PID 1 for containers, as one static musl binary.
#
# Build the image (its only file is /resil-init), for this machine's platform,
# another one, or both:
#
#   docker build -t resil-init .
#   docker build --platform linux/arm64 -t resil-init:arm64 .
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/resil-init --push .
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
# For another platform (docker build --platform linux/arm64 ., or buildx with
# --platform linux/amd64,linux/arm64) this stage still runs on the builder's
# own platform and cross-compiles for TARGETARCH, as `make static ARCH=arm64`
# does: no emulation. Without BuildKit (no BUILDPLATFORM, no TARGETARCH) it is
# a plain amd64 build.
FROM --platform=${BUILDPLATFORM:-linux/amd64} debian:bookworm-slim AS build
ARG TARGETARCH
WORKDIR /src
# libcurl and cJSON from Debian's source packages, in their own cached layer:
# it is rebuilt only when the build scripts change.
COPY scripts/build-static.sh scripts/deps.sh scripts/
RUN sh scripts/build-static.sh --deps-only --arch "$TARGETARCH"
# resil-init itself (build/ is in .dockerignore, so build/deps above is kept);
# the script checks the result is static and for TARGETARCH, and runs
# --version when it can.
COPY . .
RUN sh scripts/build-static.sh --arch "$TARGETARCH" --output build/resil-init-static

# --- the image: nothing but the binary ---------------------------------------
FROM scratch
COPY --from=build /src/build/resil-init-static /resil-init
ENTRYPOINT ["/resil-init", "--"]
