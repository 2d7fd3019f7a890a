# Stand-in for jaegertracing/jaeger (v2) where no image can be pulled: the jaeger binary built
# from its Go module (static, CGO off) by docker/build-images.sh. Its UI is a placeholder page
# (the npm UI build is not part of the module); the query API is the real one.
FROM scratch
COPY rootfs/ /
USER 10001:10001
EXPOSE 4317 4318 16686 13133
ENTRYPOINT ["/cmd/jaeger/jaeger-linux"]
