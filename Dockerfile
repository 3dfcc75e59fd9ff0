# resil-init: a tiny PID 1 for containers, as one static musl binary.
#
# Build the image (its only file is /resil-init):
#
#   docker build -t resil-init .
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
FROM debian:bookworm-slim AS build
WORKDIR /src
# libcurl and cJSON from Debian's source packages, in their own cached layer:
# it is rebuilt only when the build script changes.
COPY scripts/build-static.sh scripts/build-static.sh
RUN sh scripts/build-static.sh --deps-only
# resil-init itself (build/ is in .dockerignore, so build/deps above is kept)
COPY . .
RUN sh scripts/build-static.sh \
 && ./build/resil-init-static --version

# --- the image: nothing but the binary ---------------------------------------
FROM scratch
COPY --from=build /src/build/resil-init-static /resil-init
ENTRYPOINT ["/resil-init", "--"]
