# speech-recognition-api as a container image: a build stage on Debian 12 that compiles the
# binary, and a slim runtime stage with the binary, its shared libraries (found by ldd, installed
# from Debian by package name), Swagger UI for /docs and a non-root user. Models go in a volume
# (/models); uploads and the embedded task database in another (/data).
#
#   podman build --format docker -t speech-recognition-api .     (or: docker build ...)
#   podman run -p 8888:8888 -v ./models:/models:ro speech-recognition-api
#
# The same image runs the API (default command) or a worker:
#   podman run ... speech-recognition-api worker --concurrency 2

FROM debian:12 AS build
ENV DEBIAN_FRONTEND=noninteractive
COPY scripts/install-deps.sh /src/scripts/install-deps.sh
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends ca-certificates \
    && /src/scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY CMakeLists.txt /src/
COPY app /src/app
COPY src /src/src
COPY web /src/web
COPY examples /src/examples
WORKDIR /src
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSRA_BUILD_TESTS=OFF \
    && cmake --build build --target speech-recognition-api
# Swagger UI from npm. Behind a TLS-intercepting proxy, pass its CA certificate(s) as PEM text:
#   --build-arg EXTRA_CA_PEM="$(cat /usr/local/share/ca-certificates/*.crt)"
ARG EXTRA_CA_PEM=""
RUN if [ -n "$EXTRA_CA_PEM" ]; then printf '%s\n' "$EXTRA_CA_PEM" > /tmp/extra-ca.pem \
      && export NODE_EXTRA_CA_CERTS=/tmp/extra-ca.pem; fi \
    && cmake --build build --target swagger_ui && rm -f /tmp/extra-ca.pem
# The Debian packages of the shared libraries the binary loads, for the runtime stage.
RUN ldd build/app/speech-recognition-api | awk '/=> \//{print $3}' \
    | xargs -r -n1 realpath | xargs -r dpkg -S 2>/dev/null | cut -d: -f1 | sort -u \
    > /runtime-packages.txt && cat /runtime-packages.txt

FROM debian:12
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=build /runtime-packages.txt /tmp/runtime-packages.txt
# pocketsphinx-en-us: the default model's data; ca-certificates: TLS to S3/GCS.
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends ca-certificates pocketsphinx-en-us \
       $(cat /tmp/runtime-packages.txt) \
    && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin sra \
    && mkdir -p /data /models && chown sra:sra /data
COPY --from=build /src/build/app/speech-recognition-api /usr/local/bin/speech-recognition-api
COPY --from=build /src/build/web/node_modules/swagger-ui-dist /usr/local/share/speech-recognition-api/swagger-ui
ENV HOST=0.0.0.0 \
    PORT=8888 \
    WEB_ASSETS_DIR=/usr/local/share/speech-recognition-api/swagger-ui \
    LOCAL_STORAGE_FOLDER_PATH=/data/files \
    EMBEDDED_BUS_DATABASE_PATH=/data/tasks.sqlite3
USER sra
WORKDIR /data
VOLUME ["/data", "/models"]
EXPOSE 8888
# No curl in the image: bash's /dev/tcp asks /health.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PORT} && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q '\"ok\"' <&3"]
ENTRYPOINT ["speech-recognition-api"]
CMD ["serve"]
