# Stand-in for prom/prometheus where no image can be pulled: Debian's prometheus package's
# prometheus and promtool and the glibc libraries they link, staged by docker/build-images.sh.
FROM scratch
COPY rootfs/bin/ /bin/
COPY rootfs/lib/ /lib/
COPY rootfs/lib64/ /lib64/
# The TSDB directory belongs to nobody, as in the official image (a named volume copies it).
COPY --chown=65534:65534 rootfs/prometheus/ /prometheus/
USER 65534:65534
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
